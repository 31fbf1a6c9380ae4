import torch

from pixforge.train.optim import load_optimizer_state


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
