import sys

from . import names, run

if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
    print("usage: python -m minimoe.experiments <name> [args]  (`<name> --help` for its flags)")
    print("experiments: " + (", ".join(names()) or "(none yet)"))
    sys.exit(0 if len(sys.argv) >= 2 else 2)
sys.exit(run(sys.argv[1], sys.argv[2:]))
