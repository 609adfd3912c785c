"""State: Peewee models behind a DatabaseProxy, migrations, and the on-disk audio cache."""
