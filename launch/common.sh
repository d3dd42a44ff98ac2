# Shared by the launch/ wrappers (sourced, not run). Sets `repo`, and defines
# `fail`, `esapn_binary`, `require_mpirun` and `is_positive_integer`.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# fail MESSAGE [STATUS]: print "NAME: MESSAGE" on stderr and exit (default 1).
fail() {
    echo "$(basename "$0"): $1" >&2
    exit "${2:-1}"
}

is_positive_integer() {
    [[ $1 =~ ^[1-9][0-9]*$ ]]
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
    if [[ -n ${ESAPN_MPIRUN_ARGS:-} ]]; then
        local extra
        read -r -a extra <<<"$ESAPN_MPIRUN_ARGS"
        mpirun_args+=("${extra[@]}")
    fi
}
