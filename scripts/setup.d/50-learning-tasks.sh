# Sourced by scripts/test.sh: the packages of the learning-algorithm tasks (optimizer_discovery:
# PyTorch and scikit-learn; rl_objective: JAX and gymnax), installed into the host interpreter,
# which the process sandbox runs jobs with. The extras pin torch==2.13.0 exactly (the CPU wheel
# where one is on hand; any other spec would make pip download the multi-GB CUDA build) and
# jax==0.9.2 (the version rl_objective's reference return was measured with).
# Skipped when they already import. When the install fails, the reason is printed and exported
# as CLADE_LEARNING_TASKS_MISSING (tests/benchmarks/test_learning_tasks.py skips with it).

if python3 -c "import sklearn, gymnax, torch, jax; assert torch.__version__.startswith('2.13.0') and jax.__version__ == '0.9.2'" >/dev/null 2>&1; then
    echo "learning tasks: torch 2.13.0, scikit-learn, jax 0.9.2 and gymnax already installed"
elif python3 -m pip install --quiet --disable-pip-version-check -e '.[torch-tasks,jax-tasks]'; then
    echo "learning tasks: installed the torch-tasks and jax-tasks extras"
else
    export CLADE_LEARNING_TASKS_MISSING="pip install -e '.[torch-tasks,jax-tasks]' failed"
    echo "learning tasks: ${CLADE_LEARNING_TASKS_MISSING}; their tests will skip"
fi
