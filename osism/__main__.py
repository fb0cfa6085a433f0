from osism.cli import main

main()
