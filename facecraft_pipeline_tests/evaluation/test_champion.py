"""The champion rule: enough faces first, then identity, ties broken by diversity; never a collapsed model."""

from __future__ import annotations

from facecraft_pipeline.evaluation import CheckpointScore, choose_champion


def row(model: str, step: int, faces: int, identity: float | None, diversity: float | None = 0.4, images: int = 16) -> CheckpointScore:
    return CheckpointScore(model=model, step=step, digest=f"{model}{step}", kind="gan", embedder="dlib-128", images=images,
                           faces=faces, face_share=faces / images, identity_mean=identity, diversity=diversity)


def test_one_face_in_sixteen_does_not_beat_sixteen_in_sixteen():
    lucky, steady = row("gan", 100, 1, 0.99, None), row("lora", 50, 16, 0.91)
    champion, reason, verdicts = choose_champion([lucky, steady])
    assert (champion.model, champion.step) == ("lora", 50)
    assert "16/16" in reason
    assert not verdicts[0].eligible and "1/16" in verdicts[0].why


def test_a_model_that_draws_the_same_face_every_time_does_not_win():
    collapsed, varied = row("gan", 300, 16, 0.97, diversity=0.001), row("wgan_gp", 300, 16, 0.93, diversity=0.35)
    champion, _, verdicts = choose_champion([collapsed, varied])
    assert champion.model == "wgan_gp" and "same face" in verdicts[0].why


def test_identity_decides_then_diversity_breaks_a_tie():
    a, b, c = row("gan", 100, 16, 0.900, 0.30), row("gan", 200, 16, 0.903, 0.10), row("lora", 50, 12, 0.950, 0.2)
    assert choose_champion([a, b, c])[0].model == "lora"
    champion, reason, _ = choose_champion([a, b], tie_margin=0.005)
    assert champion.step == 100 and "diversity" in reason  # 0.900 vs 0.903 is a tie; step 100 is more diverse
    assert choose_champion([a, b], tie_margin=0.0)[0].step == 200


def test_no_faces_no_champion_and_the_reason_says_so():
    champion, reason, verdicts = choose_champion([row("lora", 3, 0, None, None), row("gan", 6, 0, None, None)])
    assert champion is None and "no checkpoint produced a detectable face" in reason
    assert all("no detectable face" in v.why for v in verdicts)
