"""TesseraQ ablations on held-out testbed seeds at full size (issue 15): relative logit error per variant.

Usage: python -m bench.studies.tesseraq_heldout HIDDEN N_CAL STEPS_PER_ROUND BITS SEEDS VARIANTS
e.g. `256 512 60 3 0,1,2 default,layer,old` (the RESULTS figures; tuning used seeds 100 and 101).
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from dataclasses import replace

import torch

from models.quant import QuantConfig, QuantSpec, TesseraQConfig, quantize_model
from models.quant.testbed import make_testbed, relative_logit_error


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    hidden, n_cal, steps, bits = int(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    seeds = [int(s) for s in argv[4].split(",")]
    variants = argv[5].split(",")
    base = TesseraQConfig(steps)
    old = replace(
        base,
        per_layer_quantile=False,
        fresh_optimizer=False,
        scale_param="sigmoid",
        batch_size=None,
        init="minmax",
    )
    table = {  # variant -> (config, blocks): each switch of the reference recipe off on its own
        "default": (base, "auto"),
        "layer": (base, ()),
        "pooled": (replace(base, per_layer_quantile=False), "auto"),
        "carry": (replace(base, fresh_optimizer=False), "auto"),
        "sigmoid": (replace(base, scale_param="sigmoid"), "auto"),
        "fullbatch": (replace(base, batch_size=None), "auto"),
        "minmax": (replace(base, init="minmax"), "auto"),
        "old": (old, ()),
        "oldblock": (old, "auto"),
    }
    errors: dict[str, list[float]] = {}
    for seed in seeds:
        tb = make_testbed(seed, hidden=hidden, depth=3, n_cal=n_cal, n_test=5000)
        for name in ["gptq", *variants]:
            q = copy.deepcopy(tb.model)
            t0 = time.perf_counter()
            if name == "gptq":
                cfg = QuantConfig("gptq", QuantSpec(bits))
            else:
                tq, blocks = table[name]
                cfg = QuantConfig("tesseraq", QuantSpec(bits), tesseraq=tq, blocks=blocks)
            quantize_model(q, tb.x_cal, cfg)
            errors.setdefault(name, []).append(relative_logit_error(q, tb.model, tb.x_test))
            print(seed, name, round(errors[name][-1], 4), f"{time.perf_counter() - t0:.1f}s", flush=True)
    for name, v in errors.items():
        print(name, round(statistics.median(v), 4), [round(x, 4) for x in v])


if __name__ == "__main__":
    main(sys.argv[1:])
