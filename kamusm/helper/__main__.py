"""`python -m kamusm.helper`: run the local card helper."""
from kamusm.helper import main

main(prog="python -m kamusm.helper")
