import copy

import torch

from pixforge.train.optim import ChannelsLastAdam, StepInBackward, load_optimizer_state


def step_after_restore(fused: bool, restore) -> torch.Tensor:
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last))
    g = torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam([p], lr=0.1, fused=fused, foreach=None if fused else False)
    p.grad = g.clone()
    opt.step()
    saved = opt.state_dict()
    for slot in saved["state"].values():  # as a checkpoint stores them: contiguous
        slot.update({k: v.contiguous() for k, v in slot.items() if v.dim()})
    fresh = torch.optim.Adam([p], lr=0.1, fused=fused, foreach=None if fused else False)
    restore(fresh, saved)
    p.grad = g * 0.5
    fresh.step()
    return p.detach().clone()


def test_restored_moments_take_their_parameters_layout_so_fused_adam_stays_exact():
    reference = step_after_restore(False, torch.optim.Adam.load_state_dict)
    assert torch.allclose(step_after_restore(True, load_optimizer_state), reference, atol=1e-6)


def test_plain_load_state_dict_would_mix_up_the_moments_under_fused_adam():
    """Why load_optimizer_state exists; if PyTorch fixes this, the workaround can go."""
    reference = step_after_restore(False, torch.optim.Adam.load_state_dict)
    assert (step_after_restore(True, torch.optim.Adam.load_state_dict) - reference).abs().max() > 1e-3


def adam_steps(in_backward: bool) -> tuple[torch.nn.Module, dict]:
    """Three steps of a small channels_last net that uses one conv twice, with a layer frozen until the last
    step, a rate that changes between steps (as the schedule changes it) and the state reloaded after the first."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
                               torch.nn.Conv2d(8, 3, 1)).to(memory_format=torch.channels_last)
    net[3].requires_grad_(False)  # frozen when the hooks are made
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.5, 0.999), fused=True)
    hooks = StepInBackward(opt) if in_backward else None
    x = torch.randn(2, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    for step in range(3):
        if step == 1:  # a resume: load_state_dict replaces the optimizer's state and group objects
            opt.load_state_dict(copy.deepcopy(opt.state_dict()))
        for group in opt.param_groups:
            group["lr"] = 0.01 * (1 - step / 4)
        net[3].requires_grad_(step == 2)  # frozen, then trained (pix2pixHD's coarse-to-fine schedule)
        opt.zero_grad(set_to_none=True)
        net[3](net[2](net[2](net[1](net[0](x))))).square().mean().backward()
        if hooks is None:
            opt.step()
        else:
            assert all(p.grad is None for p in net.parameters())  # freed as soon as used
    return net, opt.state_dict()


def test_stepping_inside_backward_gives_exactly_the_numbers_of_stepping_after_it():
    after, after_state = adam_steps(False)
    inside, inside_state = adam_steps(True)
    for (name, a), (_, b) in zip(after.state_dict().items(), inside.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert after_state["param_groups"] == inside_state["param_groups"]
    assert set(inside_state["state"]) == {0, 1, 2, 3, 4, 5}  # the once-frozen layer too, once
    for index, slot in after_state["state"].items():
        for key, value in slot.items():
            assert torch.equal(value, inside_state["state"][index][key]), (index, key)


def test_removed_hooks_leave_the_gradients_for_opt_step():
    p = torch.nn.Parameter(torch.ones(3))
    hooks = StepInBackward(torch.optim.Adam([p], lr=0.1))
    hooks.remove()
    (p * 2).sum().backward()
    assert torch.equal(p.grad, torch.full((3,), 2.0)) and torch.equal(p.detach(), torch.ones(3))


def channels_last_run(optimizer: type[torch.optim.Adam]) -> tuple[list[torch.Tensor], dict]:
    """Three fused steps over channels_last convs (one without a gradient at the second step), a contiguous
    bias and a linear layer."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 4, 1), torch.nn.Flatten(),
                              torch.nn.Linear(64, 2)).to(memory_format=torch.channels_last)
    opt = optimizer(net.parameters(), lr=0.01, betas=(0.5, 0.999), fused=True)
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        net(torch.randn(2, 3, 6, 6).contiguous(memory_format=torch.channels_last)).square().mean().backward()
        if step == 1:
            net[1].weight.grad = None
        opt.step()
    return [p.detach().clone() for p in net.parameters()], opt.state_dict()


def test_channels_last_adam_is_torchs_fused_adam_bit_for_bit_with_the_same_state():
    ours, our_state = channels_last_run(ChannelsLastAdam)
    theirs, their_state = channels_last_run(torch.optim.Adam)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    for slot, other in zip(our_state["state"].values(), their_state["state"].values(), strict=True):
        for key, value in slot.items():
            assert torch.equal(value, other[key])
            assert value.shape == other[key].shape and value.stride() == other[key].stride(), key


def test_channels_last_adam_makes_no_copy_of_channels_last_gradients():
    """torch's fused CPU kernel copies each non-contiguous gradient to a contiguous tensor it never reads."""
    from torch.profiler import profile

    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(64, 32, 3, 3).contiguous(memory_format=torch.channels_last))

    def copies(optimizer: type[torch.optim.Adam]) -> int:
        opt = optimizer([p], lr=0.01, fused=True)
        p.grad = torch.randn_like(p)
        opt.step()  # creates the state
        with profile() as prof:
            opt.step()
        return sum(e.count for e in prof.key_averages() if e.key == "aten::clone")

    assert copies(torch.optim.Adam) > 0  # the waste ChannelsLastAdam exists for; if torch fixes it, drop the class
    assert copies(ChannelsLastAdam) == 0
