from pixforge.train.metrics_log import MetricsLog, read_metrics


def test_metrics_log_survives_a_line_torn_by_a_kill(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "G_L1": 3.0}\n{"step": 2, "G_L1": 2.0}\n{"step": 3, "G_')
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
    MetricsLog(path, resume_step=1).write({"step": 2, "G_L1": 2.5})
    assert read_metrics(path) == [{"step": 1, "G_L1": 3.0}, {"step": 2, "G_L1": 2.5}]
