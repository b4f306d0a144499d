from stabcheck.cli.app import main

main()
