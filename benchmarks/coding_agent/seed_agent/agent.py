"""A small coding agent: it reads a programming problem, talks to an LLM, uses tools and leaves a
solution in its working directory. This file is what Cladeforge evolves (Darwin-Gödel mode): the
agent's children are made by the agent itself, editing a copy of this file.

The model acts through fenced blocks in its replies, so any chat model works (no tool-calling API):

    ```bash
    python -m unittest -q          <- run a shell command in the working directory
    ```
    ```view solution.py            <- show a file with line numbers
    ```
    ```write solution.py           <- replace a file's whole text
    def answer(): ...
    ```
    ```edit solution.py            <- replace one exact snippet of a file
    <<<<<<< SEARCH
    old lines
    =======
    new lines
    >>>>>>> REPLACE
    ```

and ends with a line `DONE`. Every message and tool call goes to a transcript (JSON lines).

Run: `python agent.py --problem description.md --workdir DIR --transcript log.jsonl`.
Inside the Cladeforge sandbox the LLM is reached through the gateway's Unix socket
($CLADE_LLM_SOCKET); elsewhere through $OPENAI_BASE_URL with $OPENAI_API_KEY and $OPENAI_MODEL.
"""

# EVOLVE-BLOCK-START
import os
import re
import subprocess

MAX_STEPS = 12
"""Model replies per problem before the agent gives up."""
OUTPUT_CHARS = 3000
"""Tool output shown to the model is cut to its last this-many characters."""
COMMAND_TIMEOUT_S = 30

SYSTEM_PROMPT = """You are a careful Python programmer working in a directory with a problem to solve.
You act only through fenced blocks; each reply may hold several, run in order:

```bash
<a shell command, run in the working directory>
```

```view <path>
```

```write <path>
<the file's whole new text>
```

```edit <path>
<<<<<<< SEARCH
<exact lines of the file>
=======
<replacement lines>
>>>>>>> REPLACE
```

You will see each block's result. Read the files first, write the solution, test it with small
checks of your own (the graders' tests are hidden), and when the solution is complete reply with a
line holding only DONE."""

BLOCK = re.compile(r"```(bash|sh|view|write|edit)[ \t]*([^\n]*)\n(.*?)```", re.DOTALL)
EDIT = re.compile(r"<<<<<<< SEARCH\n(.*?)\n?=======\n(.*?)\n?>>>>>>> REPLACE", re.DOTALL)


def parse_actions(reply):
    """The tool calls in a model reply, in order: (kind, argument, body)."""
    return [(kind, arg.strip(), body) for kind, arg, body in BLOCK.findall(reply)]


def is_done(reply):
    return any(line.strip() == "DONE" for line in reply.splitlines())


def clip(text):
    return text if len(text) <= OUTPUT_CHARS else "[...]\n" + text[-OUTPUT_CHARS:]


def inside(workdir, path):
    """The absolute path of `path` if it lies inside the working directory, else None."""
    full = os.path.realpath(os.path.join(workdir, path))
    root = os.path.realpath(workdir)
    return full if full == root or full.startswith(root + os.sep) else None


def run_shell(workdir, command):
    try:
        done = subprocess.run(
            command, shell=True, cwd=workdir, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return f"[timed out after {COMMAND_TIMEOUT_S} s]"
    return clip(f"{done.stdout}{done.stderr}[exit code {done.returncode}]")


def view_file(workdir, path):
    full = inside(workdir, path)
    if full is None or not os.path.isfile(full):
        return f"[no file {path!r} in the working directory]"
    with open(full, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    return clip("\n".join(f"{n:4d}  {line}" for n, line in enumerate(lines, start=1)) or "[empty file]")


def write_file(workdir, path, text):
    full = inside(workdir, path)
    if full is None:
        return f"[refused: {path!r} is outside the working directory]"
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as handle:
        handle.write(text)
    return f"[wrote {path}: {len(text.splitlines())} lines]"


def edit_file(workdir, path, body):
    full = inside(workdir, path)
    if full is None or not os.path.isfile(full):
        return f"[no file {path!r} in the working directory]"
    with open(full, encoding="utf-8") as handle:
        text = handle.read()
    edits = EDIT.findall(body)
    if not edits:
        return "[edit block needs <<<<<<< SEARCH / ======= / >>>>>>> REPLACE markers]"
    for search, replace in edits:
        if text.count(search) != 1:
            return f"[edit failed: the SEARCH text occurs {text.count(search)} times in {path}, not once]"
        text = text.replace(search, replace, 1)
    with open(full, "w", encoding="utf-8") as handle:
        handle.write(text)
    return f"[edited {path}: {len(edits)} change(s)]"


def act(workdir, kind, arg, body):
    """Run one tool call and return what the model sees of it."""
    if kind in ("bash", "sh"):
        return run_shell(workdir, body)
    if kind == "view":
        return view_file(workdir, arg)
    if kind == "write":
        return write_file(workdir, arg, body)
    return edit_file(workdir, arg, body)


def first_message(problem, workdir):
    files = sorted(os.listdir(workdir))
    return f"The problem:\n\n{problem}\n\nFiles in the working directory: {', '.join(files) or '(none)'}"


def solve(problem, workdir, llm, transcript):
    """Work on `problem` (its text) in `workdir` until the model says DONE or the steps run out."""
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": first_message(problem, workdir)},
    ]
    for message in messages:
        transcript.message(message["role"], message["content"])
    for _ in range(MAX_STEPS):
        reply = llm.chat(messages)
        transcript.message("assistant", reply)
        messages.append({"role": "assistant", "content": reply})
        actions = parse_actions(reply)
        results = []
        for kind, arg, body in actions:
            output = act(workdir, kind, arg, body)
            transcript.tool(kind, arg or body, output)
            results.append(f"```{kind} {arg}``` gave:\n{output}")
        if is_done(reply):
            return
        feedback = "\n\n".join(results) if results else "Use the fenced blocks to act, or reply DONE."
        transcript.message("user", feedback)
        messages.append({"role": "user", "content": feedback})


# EVOLVE-BLOCK-END

# ---- Fixed part: how the harness starts the agent and reaches the LLM. Edits here are refused. ----
import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402, F811
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402


class LLMUnavailable(Exception):
    """The LLM refused (budget spent) or cannot be reached: the agent stops."""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over the gateway's Unix socket (the sandbox has no network)."""

    def __init__(self, path, timeout):
        super().__init__("gateway", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class LLM:
    """Chat completions from the Cladeforge gateway, or any OpenAI-compatible server."""

    def __init__(self, timeout_s=300.0):
        self.timeout_s = timeout_s
        self.socket_path = os.environ.get("CLADE_LLM_SOCKET")
        self.token = os.environ.get("CLADE_LLM_TOKEN", "")
        self.base = urllib.parse.urlparse(os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"))
        self.model = os.environ.get("OPENAI_MODEL", "default")

    def _connection(self):
        if self.socket_path:
            return _UnixConnection(self.socket_path, self.timeout_s), "/v1/chat/completions", self.token
        connection_class = http.client.HTTPSConnection if self.base.scheme == "https" else http.client.HTTPConnection
        path = self.base.path.rstrip("/") + "/chat/completions"
        return connection_class(self.base.netloc, timeout=self.timeout_s), path, os.environ.get("OPENAI_API_KEY", "")

    def chat(self, messages):
        body = json.dumps({"model": self.model, "messages": messages}).encode()
        for attempt in range(3):
            connection, path, key = self._connection()
            headers = {"Content-Type": "application/json"}
            if key:
                headers["Authorization"] = f"Bearer {key}"
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except OSError as exc:
                if attempt == 2:
                    raise LLMUnavailable(f"cannot reach the LLM: {exc}") from None
                time.sleep(1 + attempt)
                continue
            finally:
                connection.close()
            if response.status == 200:
                return json.loads(data)["choices"][0]["message"]["content"] or ""
            if response.status >= 500 and attempt < 2:
                time.sleep(1 + attempt)
                continue
            raise LLMUnavailable(f"LLM answered HTTP {response.status}: {data[:500].decode(errors='replace')}")
        raise LLMUnavailable("no reply from the LLM")


class Transcript:
    """The run's messages and tool calls as JSON lines, for the evaluation log and `clade replay`."""

    def __init__(self, path):
        self.handle = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def _write(self, entry):
        if self.handle is not None:
            self.handle.write(json.dumps(entry) + "\n")
            self.handle.flush()

    def message(self, role, content):
        self._write({"type": "message", "role": role, "content": content})

    def tool(self, name, argument, output):
        self._write({"type": "tool", "name": name, "input": argument, "output": output})


def main():
    parser = argparse.ArgumentParser(description="Solve one programming problem with an LLM.")
    parser.add_argument("--problem", help="file holding the problem statement")
    parser.add_argument("--workdir", default=".", help="directory holding the files to work on")
    parser.add_argument("--transcript", default=None, help="JSON-lines log of the conversation")
    parser.add_argument("--self-test", action="store_true", help="check that the agent loads, then exit")
    args = parser.parse_args()
    if args.self_test:
        ok = callable(globals().get("solve"))
        print("agent loads" if ok else "agent has no solve(problem, workdir, llm, transcript)")
        sys.exit(0 if ok else 1)
    if not args.problem:
        parser.error("--problem is required")
    with open(args.problem, encoding="utf-8") as handle:
        problem = handle.read()
    transcript = Transcript(args.transcript)
    try:
        solve(problem, os.path.abspath(args.workdir), LLM(), transcript)
    except LLMUnavailable as exc:
        transcript.message("error", str(exc))
        print(f"agent stopped: {exc}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
