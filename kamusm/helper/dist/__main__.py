"""`python -m kamusm.helper.dist`: build the kamusm-helper wheel (`make helper-dist`)."""
from kamusm.helper.dist import main

main()
