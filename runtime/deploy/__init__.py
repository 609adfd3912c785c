"""Function deploys: every function module has an immutable, numbered version history in the database and a
pointer to the version that serves (and an optional canary). ``versions`` stores them, ``deployer`` checks a
new version and moves the pointers (deploy, promote, rollback, automatic canary rollback), ``sync`` makes
every process follow the pointers, ``cli`` is ``python -m runtime functions|deploy|promote|rollback``."""
