"""The open-loop diagnostic scores a policy against the expert's plan at the same state."""

from vlacompile.sim.expert import plan
from vlacompile.sim.openloop import agreement


class Oracle:
    """Answers with the expert's own plan (it peeks at the episode), or its mirror image."""

    noise_shape = (1, 16, 7)

    def __init__(self, mirror: bool = False):
        self.mirror, self.episode = mirror, None

    def reset(self, episode):
        self.episode = episode

    def __call__(self, image, instruction, noise, state=None):
        chunk = plan(self.episode.world, self.episode.task, 16).copy()
        if self.mirror:
            chunk[:, :3] *= -1
            chunk[:, 6] = 1.0 - chunk[:, 6]
        return chunk


def test_the_expert_agrees_with_itself_and_its_mirror_never_does():
    right, wrong = agreement(Oracle(), episodes=5), agreement(Oracle(mirror=True), episodes=5)
    assert right["sign_agreement"] == 1.0 == right["gripper_agreement"]
    assert wrong["sign_agreement"] == 0.0 == wrong["gripper_agreement"]
    assert right["signs"] == wrong["signs"] > 0 and right["predictions"] >= 5
