"""Renders every case of cases.json with Python's Jinja2 set up as transformers sets it up (sandboxed,
trim_blocks, lstrip_blocks, loop controls, its tojson, raise_exception and strftime_now) and checks that the
outputs equal expected/, which @huggingface/jinja made: the expected outputs are then those of both
implementations. Run: python3 check-python.py (needs jinja2); exit 1 when a case differs."""
import json
import sys
from datetime import datetime
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Raised(Exception):
    pass


def raise_exception(message):
    raise Raised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda format: datetime.now().strftime(format)

here = Path(__file__).parent
cases = json.loads((here / "cases.json").read_text(encoding="utf-8"))
differ = 0
for name, conversations in cases["templates"].items():
    template = env.from_string((here / "templates" / f"{name}.jinja").read_text(encoding="utf-8"))
    expected = json.loads((here / "expected" / f"{name}.json").read_text(encoding="utf-8"))
    results = []
    for conversation in conversations:
        case = cases["conversations"][conversation]
        for add_generation_prompt in (True, False):
            result = {"conversation": conversation, "add_generation_prompt": add_generation_prompt}
            variables = {"tools": None, "documents": None, "bos_token": cases["bos_token"], "eos_token": cases["eos_token"],
                         **case.get("variables", {}), "messages": case["messages"], "add_generation_prompt": add_generation_prompt}
            try:
                result["output"] = template.render(**variables)
            except Raised as e:
                result["raised"] = str(e)
            results.append(result)
    for got, want in zip(results, expected):
        if got != want:
            differ += 1
            print(f"{name}, {got['conversation']}, add_generation_prompt={got['add_generation_prompt']}:\n  python: {got}\n  expected: {want}")
print(f"{differ} case(s) differ from expected/")
sys.exit(1 if differ else 0)
