from pixforge.cli import run

run()
