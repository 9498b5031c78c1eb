from hpt.cli import main

main()
