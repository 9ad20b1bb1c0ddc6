"""`python -m gaverify`: the same command line as the `gaverify` script."""

from gaverify.cli import main

main()
