from labeeb.hookspecs import hookimpl


@hookimpl
def register_skills(register):
    register({"name": "not a Skill"})
