"""``ControllerConfig``, how the DexGen controller samples and acts, and ``SHIPPED_METHOD``, the guided method that
ships. Kept apart from the controller so that a command's config (and its ``--help``) does not import torch."""

from __future__ import annotations

from dataclasses import dataclass

from dexgen.checks import check_choice, check_int, check_number
from dexgen.data.schema import PRIMITIVES

INTENTS = ("auto", "rigid", "predicted")
"""How best-of-candidates reads a command's intended object rotation (see ``guidance.command_intent``)."""


def check_intent_modes(names: tuple[str, ...]) -> None:
    """A ValueError unless ``names`` are rotation primitives as in ``PRIMITIVES`` (rotate+x ... rotate-z)."""
    bad = [n for n in names if n not in PRIMITIVES or not n.startswith("rotate")]
    if bad or not names:
        raise ValueError(f"intent_modes must name rotation primitives (rotate+x ... rotate-z), got {list(names)}")


@dataclass(frozen=True)
class ControllerConfig:
    """How the controller samples and acts (the defaults: unguided sampling; ``SHIPPED_METHOD``: the guided method
    that ships)."""

    alpha: float = 0.0
    """Guidance strength α (0: unguided, the command's fingertip motion is not pulled toward; a model with an intent
    input still reads the command's intent)."""
    command_gain: float = 1.0
    """Factor on every command's fingertip motion before anything reads it (guidance, intent, mode, ranking):
    motion scaling, as teleoperation consoles offer. A guided plan is a compromise between the prior and the
    command, so the hand turns the object slower than the command asks; a gain above 1 asks for more to get
    closer to what was meant. 1: the command as given."""
    translation_weight: float = 1.0
    """Factor on the command's common translation (the mean displacement of its four fingertips at each horizon
    step), applied with ``command_gain`` before anything reads the command: 1 keeps the command as given, 0 keeps
    only how the fingertips move relative to their centroid. Turning an object in the hand moves the fingertips
    about it rather than all together; a command whose fingertips all drift one way (a miscalibrated tracker,
    ``corrupted:biased``) asks the hand to carry the object out of its grasp."""
    candidates: int = 1
    """Plans sampled per decision when a command is given; with more than one, the plan whose predicted object
    rotation (the model's rotation predictor) is closest to the command's intended rotation is followed (needs a
    model with a rotation predictor)."""
    intent: str = "auto"
    """How best-of-candidates and mode_from_intent read the command's intended object rotation: rigid (the rigid
    rotation of the command's fingertips over the horizon), predicted (the model's rotation predictor applied to
    the command itself: what the object would do were the fingertips to follow it), or auto (rigid for a command
    whose fingertips move almost rigidly, a fraction ``rigid_fraction`` of their squared displacement or more, and
    predicted for the others; see ``dexgen.controller.guidance.command_intent``)."""
    rigid_fraction: float = 0.9
    """With intent auto (and for ``rigid_alpha_scale``): the least fraction of a command's squared fingertip
    displacement that a rigid motion must explain for the command to be read as a rigid turn."""
    rigid_alpha_scale: float = 1.0
    """Multiplier of α for a command read as a rigid turn (fingertips moved as one body, as the kinematic-intent
    and keyboard sources do; see ``rigid_fraction``). Such a command says what the object should do, not how the
    fingers do it: with the mode chosen from its intent the prior supplies the gait, and a strong pull toward rigid
    fingertip motion asks for motion the experts never make. 1: every command guided alike."""
    num_inference_steps: int | None = None
    """DDIM steps per decision; None uses the model's default."""
    replan_every: int = 1
    """Sample a new plan every this many calls (1: replan every control step)."""
    seed: int = 0
    """Seed of the sampling noise (the same seed and inputs give the same targets)."""
    mode: int | None = None
    """Mode input (a primitive id) for a model trained with ``mode=primitive``; None for a model without (or, for
    one trained with mode dropout, the unknown mode)."""
    mode_from_intent: bool = False
    """For a model trained with mode dropout: at each decision with a command, give the denoiser the primitive of
    ``intent_modes`` that the command's intended object rotation (read as ``intent``) turns along fastest, if at
    least ``mode_min_speed``, and the unknown mode otherwise (and without a command). A coarse command then picks
    the kind of motion it means (an expert's gait), and guidance shapes it; the command is still never a network
    input."""
    intent_modes: tuple[str, ...] | None = None
    """Rotation primitives (``dexgen.data.schema.PRIMITIVES``) that mode_from_intent chooses among; None: the
    rotation primitives of the model's training data (its record's ``primitives_seen``; ``DEFAULT_INTENT_MODES``
    for a record from before they were stored). A primitive the model never saw has an untrained mode."""
    mode_min_speed: float = 0.1
    """Least intended rotation along a primitive's axis, rad/s, for mode_from_intent to choose that primitive."""
    intent_scale: float = 1.0
    """For a model with an intent input: the classifier-free guidance scale s of the intent (the object twist
    given to ``act``, or else the rigid twist fit of the command; ``DexGenModel.sample``): 1 samples given the
    intent, 0 ignores it (the prior alone), above 1 follows it more strongly. A model without an intent input
    has nothing to scale: 1 is ignored there and any other value refused."""

    def __post_init__(self) -> None:
        check_number("alpha", self.alpha, ge=0)
        check_number("command_gain", self.command_gain, gt=0)
        check_number("translation_weight", self.translation_weight, ge=0)
        check_int("candidates", self.candidates, ge=1)
        check_choice("intent", self.intent, INTENTS)
        check_number("rigid_fraction", self.rigid_fraction, ge=0, le=1)
        check_number("rigid_alpha_scale", self.rigid_alpha_scale, ge=0)
        check_int("num_inference_steps", self.num_inference_steps, ge=1, optional=True)
        check_int("replan_every", self.replan_every, ge=1)
        check_number("mode_min_speed", self.mode_min_speed)
        check_number("intent_scale", self.intent_scale, ge=0)
        if self.intent_modes is not None:
            check_intent_modes(self.intent_modes)


SHIPPED_METHOD = ControllerConfig(alpha=0.45, command_gain=1.5, translation_weight=0.5, candidates=8,
                                  mode_from_intent=True, rigid_alpha_scale=0.1)  # fmt: skip
"""The guided method that ships, for a model with a rotation predictor and mode dropout (``fit_to_model`` fits it
to others): guidance strength 0.45, best of 8 plans ranked by the rotation predictor, the mode picked from the
command's intent, rigid commands guided at a tenth of α, the command's motion scaled by 1.5 and its common
translation halved. ``dexgen eval``, ``demo``, ``teleop``, ``reached-states`` and ``bench controller`` run it; the
measurements each setting rests on are in docs/results.md."""
