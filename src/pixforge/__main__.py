from pixforge.cli import main

main()
