# Shared by the launch/ wrappers (sourced, not run). Sets `repo`, and defines
# `fail`, `esapn_binary`, `require_mpirun`, `is_positive_integer` and
# `is_ip_address`.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# fail MESSAGE [STATUS]: print "NAME: MESSAGE" on stderr and exit (default 1).
fail() {
    echo "$(basename "$0"): $1" >&2
    exit "${2:-1}"
}

is_positive_integer() {
    [[ $1 =~ ^[1-9][0-9]*$ ]]
}

# An IPv4 address (dotted quad) or an IPv6 address: names no resolver must know.
is_ip_address() {
    [[ $1 =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ || ( $1 == *:* && $1 =~ ^[0-9A-Fa-f:.]+$ ) ]]
}

# The esapn executable: $ESAPN_BIN, or the release build of this checkout.
esapn_binary() {
    local bin=${ESAPN_BIN:-$repo/.build/release/esapn}
    if [[ ! -x $bin ]]; then
        fail "esapn is not built at $bin: run scripts/setup.sh (or swift build -c release), or set ESAPN_BIN"
    fi
    printf '%s\n' "$bin"
}

require_mpirun() {
    command -v mpirun >/dev/null 2>&1 || fail "mpirun not found on PATH: install openmpi-bin (scripts/setup.sh)"
}

# Arguments every launch passes to mpirun: root permission when root, one
# BLAS thread per rank (reproducible sums, no oversubscribed cores), and
# any extra arguments from $ESAPN_MPIRUN_ARGS (split on spaces).
common_mpirun_args() {
    mpirun_args=()
    if [[ $(id -u) == 0 ]]; then
        mpirun_args+=(--allow-run-as-root)
    fi
    mpirun_args+=(-x OPENBLAS_NUM_THREADS=1)
    choose_blas_core
    if [[ -n ${OPENBLAS_CORETYPE:-} ]]; then
        mpirun_args+=(-x "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE")
    fi
    if [[ -n ${ESAPN_MPIRUN_ARGS:-} ]]; then
        local extra
        read -r -a extra <<<"$ESAPN_MPIRUN_ARGS"
        mpirun_args+=("${extra[@]}")
    fi
}

# OpenBLAS 0.3.21 (Debian 12) does not know recent Intel CPUs and falls back
# to its SSE3 "Prescott" kernels: 4× slower matrix products, 2.5× slower
# training (BENCHMARKS.md). Unless OPENBLAS_CORETYPE is set already (or
# ESAPN_KEEP_BLAS_CORE=1), pick the kernels this launching machine's CPU
# supports: SkylakeX with AVX-512, Haswell with AVX2. In a cluster the nodes
# should be alike; set OPENBLAS_CORETYPE yourself if they are not.
choose_blas_core() {
    [[ -n ${OPENBLAS_CORETYPE:-} || ${ESAPN_KEEP_BLAS_CORE:-0} == 1 ]] && return 0
    local flags
    flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
    if [[ $flags == *" avx512f "* && $flags == *" avx512bw "* && $flags == *" avx512vl "* && $flags == *" avx512dq "* ]]; then
        export OPENBLAS_CORETYPE=SkylakeX
    elif [[ $flags == *" avx2 "* && $flags == *" fma "* ]]; then
        export OPENBLAS_CORETYPE=Haswell
    fi
}
