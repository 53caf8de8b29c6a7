"""--precision checks (utils.inference.precision): bf16 only where the CPU flags have avx512_bf16 or
amx_bf16, decided from a cpuinfo() dict (faked here), int8 only for a quantised model folder."""
import pytest

from utils.errors import ConfigError, DeviceError
from utils.inference.precision import bf16_flags, check_precision
from utils.runtime.cpuinfo import cpu_flags

NO_BF16 = {"vendor_id": "GenuineIntel", "flags": "fpu sse avx2 avx512f avx512_vnni"}
AVX512_BF16 = {"vendor_id": "AuthenticAMD", "flags": "avx2 avx512f avx512_vnni avx512_bf16"}
AMX = {"vendor_id": "GenuineIntel", "flags": "avx512f amx_tile amx_bf16 amx_int8"}


def test_cpu_flags_reads_the_given_fields():
    assert cpu_flags(NO_BF16) == {"fpu", "sse", "avx2", "avx512f", "avx512_vnni"}
    assert cpu_flags({}) == set()
    assert bf16_flags(AVX512_BF16) == ["avx512_bf16"] and bf16_flags(AMX) == ["amx_bf16"] and bf16_flags(NO_BF16) == []


def test_bf16_refused_without_the_flags_with_one_line_naming_them():
    with pytest.raises(DeviceError) as err:
        check_precision("bf16", fields=NO_BF16)
    message = str(err.value)
    assert "\n" not in message and message.startswith("--precision bf16")
    assert "avx512_bf16" in message and "amx_bf16" in message and "/proc/cpuinfo" in message


@pytest.mark.parametrize("fields", [AVX512_BF16, AMX])
def test_bf16_allowed_with_either_flag(fields):
    assert check_precision("bf16", fields=fields) is None


def test_fp32_runs_anywhere_and_needs_no_flags():
    assert check_precision("fp32", fields={}) is None
    assert check_precision("fp32", use_gpu=True, use_mkldnn=False, fields={}) is None


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"precision": "int8"}, ConfigError, "fp32 export"),  # an fp32 folder
    ({"precision": "fp32", "model_precision": "int8"}, ConfigError, "--precision int8"),
    ({"precision": "bf16", "model_precision": "int8"}, ConfigError, "int8 (quantised) model"),
    ({"precision": "int8", "model_precision": "int8", "use_gpu": True}, DeviceError, "--use-gpu False"),
    ({"precision": "int8", "model_precision": "int8", "use_mkldnn": False}, ConfigError, "--use-mkldnn True"),
    ({"precision": "bf16", "use_mkldnn": False, "fields": AMX}, ConfigError, "--use-mkldnn True"),
    ({"precision": "fp16"}, ConfigError, "fp32, bf16, int8"),
])
def test_what_cannot_run_is_one_line_naming_the_flag(kwargs, error, needle):
    with pytest.raises(error) as err:
        check_precision(**kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value) and "--precision" in str(err.value)


def test_int8_model_runs_int8_on_any_cpu():
    assert check_precision("int8", model_precision="int8", fields=NO_BF16) is None
