from evlf.cli import main

main()
