from labeeb.hookspecs import hookimpl


@hookimpl
def register_skills(register):
    raise RuntimeError("boom while registering")
