"""``python -m benchmarks``: run every row and print a Markdown table (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import os
import platform

import torch

from benchmarks import images, memory, nli, ray_embed, startup, text, zeroshot
from benchmarks.common import markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2000, help="sentences in the text rows")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timed runs per row")
    parser.add_argument(
        "--pipeline-texts",
        type=int,
        default=None,
        help="sentences in the feature-extraction pipeline row (default: --texts; 0 skips)",
    )
    parser.add_argument(
        "--images", type=int, default=64, help="JPEG files in the CLIP image row (0 skips)"
    )
    parser.add_argument(
        "--timm-images", type=int, default=32, help="JPEG files in the timm ViT-B/16 row (0 skips)"
    )
    parser.add_argument(
        "--nli-texts", type=int, default=64, help="texts in the zero-shot NLI row (0 skips it)"
    )
    parser.add_argument(
        "--zeroshot-images",
        type=int,
        default=256,
        help="files in the zero-shot image row (0 skips)",
    )
    parser.add_argument(
        "--zeroshot-peer-images", type=int, default=16, help="of those, files transformers runs"
    )
    parser.add_argument(
        "--memory-images", type=int, default=5000, help="files in the streaming check (0 skips)"
    )
    parser.add_argument(
        "--embed-texts", type=int, default=20000, help="texts for `mmenc embed` memory (0 skips)"
    )
    parser.add_argument(
        "--embed-images", type=int, default=2000, help="files for `mmenc embed` memory (0 skips)"
    )
    parser.add_argument(
        "--ray-texts",
        type=int,
        default=2000,
        help="texts through Ray Data with 2 actors (needs mmenc[ray]; 0 skips)",
    )
    parser.add_argument(
        "--dtypes", default="float32,bfloat16", help="mmenc dtypes of the text and CLIP rows"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_grad_enabled(False)

    from benchmarks.peak import matmul_peak
    from mmenc.runtime import cpu_has_native_bf16

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"native bf16: {cpu_has_native_bf16()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; 2048x2048 matmul peak: "
        f"{matmul_peak(torch.float32):.0f} GFLOP/s float32, "
        f"{matmul_peak(torch.bfloat16):.0f} GFLOP/s bfloat16\n"
    )
    dtypes = tuple(args.dtypes.split(","))
    rows = text.run(args.texts, args.repeats, dtypes) if args.texts else []
    pipeline_texts = args.texts if args.pipeline_texts is None else args.pipeline_texts
    if pipeline_texts:
        rows += text.run_pipeline(pipeline_texts, args.repeats)
    if args.images:
        rows += images.run(args.images, args.repeats, dtypes)
    if args.timm_images:
        rows += images.run_timm(args.timm_images, args.repeats)
    if args.nli_texts:
        rows += nli.run(args.nli_texts, args.repeats)
    if args.zeroshot_images:
        rows += zeroshot.run(args.zeroshot_images, args.zeroshot_peer_images, args.repeats)
    if args.ray_texts and ray_embed.available():
        rows += ray_embed.run(args.ray_texts, args.repeats)
    elif args.ray_texts:
        print("skipping the Ray Data row: install mmenc[ray] (pip install 'mmenc[ray]')\n")
    print(markdown(rows))
    if args.memory_images:
        print("\n" + zeroshot.memory_table(args.memory_images))
    if args.embed_texts or args.embed_images:
        print("\n" + memory.table(memory.run(args.embed_texts, args.embed_images)))
    print("\n| start-up | median seconds | target |\n|---|---|---|")
    for label, seconds in startup.run():
        print(f"| `{label}` | {seconds:.3f} | < 0.5 s {'✓' if seconds < 0.5 else '✗'} |")


if __name__ == "__main__":
    main()
