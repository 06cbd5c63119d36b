#!/usr/bin/env bash
# The CUDA checks, prepared as one run for a machine with a GPU (the `device` tool):
#   run(command="bash benchmarks/gpu_check.sh", timeout_s=570)
# Uses that machine's own python3 (PyTorch with CUDA, torch-geometric and numba are
# preinstalled there); logs and results go to $OUT. Budget: tests 240 s, gather 150 s,
# pipeline 120 s (under 10 minutes with start-up). No GPU has run this yet: see the README.
set -uo pipefail
out=${OUT:-/tmp}
export PYTHONPATH=$PWD
python3 - <<'PY' 2>&1 | tee "$out/device.log"
import torch, torch_geometric, numba
print("torch", torch.__version__, "pyg", torch_geometric.__version__, "numba", numba.__version__)
print("device", torch.cuda.get_device_name(), torch.cuda.get_device_properties(0).total_memory >> 30, "GiB",
      "devices", torch.cuda.device_count())
PY
timeout 240 python3 -m pytest -q -p no:cacheprovider \
    tests/test_cuda_zero_copy.py tests/test_cuda_host_memory.py tests/test_cuda_mocked.py \
    tests/test_feature_store.py tests/test_prefetch.py 2>&1 | tee "$out/cuda_tests.log"
timeout 150 python3 -m graphbatch.cli.main bench gather --row-bytes 128 256 512 1024 4096 \
    --table-mib 4096 --gather-mib 512 --out "$out/gather.json" 2>&1 | tee "$out/gather_bench.log"
timeout 120 python3 -m graphbatch.cli.main bench pipeline --out "$out/pipeline.json" 2>&1 \
    | grep -v '%|' | tee "$out/pipeline_bench.log"
echo "== targets (issue 15) =="
python3 benchmarks/gpu_targets.py "$out/gather.json" "$out/pipeline.json" 2>&1 | tee "$out/targets.log"
