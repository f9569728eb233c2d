import labeeb_this_module_does_not_exist  # noqa: F401  (fails at import, on purpose)
