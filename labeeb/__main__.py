from labeeb.cli import main

main()
