"""ModelSamplingDiscrete: set a model's prediction type (and zero-terminal-SNR schedule) by hand, as in
ComfyUI, for files whose parameterisation the loader cannot tell (SD2 768-v merges, v-pred finetunes)."""
from __future__ import annotations

from engine import BOOLEAN, COMBO, MODEL, Input, Output, node

from .model_types import DiffusionModel

PREDICTIONS = {"eps": "epsilon", "v_prediction": "v_prediction", "x0": "sample"}
UNSUPPORTED = ("lcm", "img_to_img")


@node("ModelSamplingDiscrete", category="advanced/model", display_name="ModelSamplingDiscrete")
class ModelSamplingDiscrete:
    """A clone of the model that predicts eps, v or x0, optionally with a zero-terminal-SNR schedule."""

    inputs = (Input("model", MODEL), Input("sampling", COMBO, options=("eps", "v_prediction", "lcm", "x0",
                                                                       "img_to_img")),
              Input("zsnr", BOOLEAN, default=False))
    outputs = (Output(MODEL, "MODEL"),)

    def run(self, model: DiffusionModel, sampling: str, zsnr: bool) -> tuple[DiffusionModel]:
        if sampling in UNSUPPORTED:
            raise ValueError(f"ModelSamplingDiscrete: sampling {sampling!r} is not supported yet "
                             f"(supported: {', '.join(PREDICTIONS)})")
        out = model.clone()
        out.scheduler_config = dict(model.scheduler_config, prediction_type=PREDICTIONS[sampling],
                                    rescale_betas_zero_snr=bool(zsnr))
        return (out,)


NODE_CLASS_MAPPINGS = {"ModelSamplingDiscrete": ModelSamplingDiscrete}
