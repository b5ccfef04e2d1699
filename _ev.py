import sys, time
from benchmarks import evaluate, load_task
from sandboxes.process import ProcessSandbox
t = load_task(sys.argv[1])
for b in t.baselines():
    s=time.monotonic()
    r = evaluate(t, {**t.seed_files(), t.main_file: b.source}, ProcessSandbox(), secrets=b.secrets)
    print(b.name, r.status, r.reason, {k: round(v,6) for k,v in r.metrics.items()}, "expected", dict(b.expected), round(time.monotonic()-s,1))
    if r.status != "valid": print(r.stages[-1].stderr_tail)
