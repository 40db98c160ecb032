# Nimbus syntax checker for Python sources: reads {"path": "source", ...} as
# JSON on stdin, compiles every .py file in path order without running any,
# and prints {"file", "line", "message"} for the first syntax error, or {}.
import json
import sys
import warnings

warnings.simplefilter("ignore")  # SyntaxWarnings are not errors


def main():
    files = json.loads(sys.stdin.buffer.read())
    for name in sorted(files):
        if not name.endswith(".py"):
            continue
        src = files[name]
        if src.startswith("\ufeff"):
            src = src[1:]
        try:
            compile(src, name, "exec", dont_inherit=True)
        except SyntaxError as e:
            return {"file": name, "line": e.lineno or 0, "message": e.msg or str(e)}
        except ValueError as e:  # null bytes, before 3.12
            return {"file": name, "line": 0, "message": str(e)}
    return {}


sys.stdout.write(json.dumps(main()) + "\n")
