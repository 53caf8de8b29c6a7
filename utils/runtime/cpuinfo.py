"""Which CPU this is, from /proc/cpuinfo: standard library only, reads nothing at import."""
import os
import platform


def cpuinfo():
    """The fields of the first processor in /proc/cpuinfo ({} where there is no such file)."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_vendor():
    """'AuthenticAMD', 'GenuineIntel', ... ('' where /proc/cpuinfo does not say)."""
    return cpuinfo().get("vendor_id", "")


def machine_key():
    """CPU model, family/model numbers and core count: timings taken on one machine hold there."""
    fields = cpuinfo()
    name = fields.get("model name") or platform.processor() or platform.machine()
    return f"{name} / family {fields.get('cpu family', '?')} model {fields.get('model', '?')} / {os.cpu_count()} cpus"


def cpu_flags(fields=None):
    """The set of flags in /proc/cpuinfo ('avx512_bf16', 'amx_bf16', ...); `fields` is a cpuinfo()
    dict to read instead (another machine's, or a test's)."""
    fields = cpuinfo() if fields is None else fields
    return set(fields.get("flags", "").split())


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # oneDNN runs native bf16 kernels with either


def bf16_flags(fields=None):
    """The bf16 flags this CPU has (of BF16_FLAGS); `fields` is a cpuinfo() dict to read instead."""
    flags = cpu_flags(fields)
    return [f for f in BF16_FLAGS if f in flags]
