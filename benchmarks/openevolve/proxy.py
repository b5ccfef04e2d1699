"""Stands in for the candidate's program in Cladeforge's isolated OpenEvolve mode
(`evaluator.isolate_program: true`): the evaluator imports this file as if it were the program,
and every function it calls on it runs in the candidate's own process, under another uid, over
the judged job's channel (clade_channel.py). Arguments and results cross as the channel's codec
values (numbers, strings, bytes, lists, tuples, sets, dicts, NumPy arrays); anything else is a
candidate fault, as is an exception in the program or a call past the time limit."""

import clade_channel as _channel


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)

    def forward(*args, **kwargs):
        return _channel.shared().call(name, *args, kwargs=kwargs or None)

    forward.__name__ = forward.__qualname__ = name
    return forward
