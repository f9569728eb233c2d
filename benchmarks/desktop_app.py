"""A scripted desktop for ``benchmarks.desktop``: a Tk window filling an Xvfb screen that changes
the way a real one does. A clock ticks each second; every 15-35 s another of three "windows"
(editor, browser, terminal) comes to the front; with the editor in front, text is typed at
about five characters a second with its blinking cursor, with the browser in front its page
scrolls every few seconds (a person types where they write and scrolls what they read).
Run as ``python -m benchmarks.desktop_app SECONDS SEED`` with DISPLAY set.
"""

from __future__ import annotations

import random
import sys
import time
import tkinter as tk

TEXT = ("def answer(question):\n    screen = look()\n    return model.ask(question, screen)\n\n"
        "# TODO: handle the error in the build log\n") * 40
PAGE = "\n".join(f"{n:3d}. Release notes: item {n} changed the parser, the cache and the docs." for n in range(400))
TERMINAL = "\n".join(["$ make test", "collected 998 items", *[f"tests/test_{n}.py ....." for n in range(30)],
                      "E   AssertionError: build failed: 3 errors", "FAILED tests/test_engine.py"])


def main() -> None:
    seconds, seed = float(sys.argv[1]), int(sys.argv[2])
    pick = random.Random(seed)
    root = tk.Tk()
    root.geometry("1920x1080+0+0")
    root.configure(bg="#2b3a55")
    clock = tk.Label(root, font=("Helvetica", 16), fg="white", bg="black")
    clock.place(x=1700, y=0, width=220, height=40)
    frames = {}
    for name, colour in (("editor", "white"), ("browser", "#f4f4f4"), ("terminal", "black")):
        text = tk.Text(root, font=("Courier", 14), bg=colour, fg="lime" if name == "terminal" else "black",
                       insertbackground="black", wrap="none")
        text.place(x=120 + 40 * len(frames), y=80 + 30 * len(frames), width=1500, height=900)
        frames[name] = text
    frames["browser"].insert("1.0", PAGE)
    frames["terminal"].insert("1.0", TERMINAL)
    editor = frames["editor"]
    editor.focus_set()
    started = time.monotonic()
    state = {"typed": 0, "front": "editor"}

    def tick() -> None:
        clock.configure(text=time.strftime("%H:%M:%S"))
        if time.monotonic() - started > seconds:
            root.destroy()
            return
        root.after(1000, tick)

    def type_one() -> None:
        if state["front"] == "editor":
            editor.insert("end", TEXT[state["typed"] % len(TEXT)])
            editor.see("end")
            state["typed"] += 1
        root.after(pick.randint(120, 280), type_one)

    def scroll() -> None:
        if state["front"] == "browser":  # a person scrolls the page they are reading
            frames["browser"].yview_scroll(pick.randint(2, 8), "units")
        root.after(pick.randint(3000, 7000), scroll)

    def switch() -> None:
        state["front"] = pick.choice([n for n in frames if n != state["front"]])
        frames[state["front"]].lift()
        frames[state["front"]].focus_set()
        root.after(pick.randint(15000, 35000), switch)

    tick()
    type_one()
    scroll()
    root.after(pick.randint(15000, 35000), switch)
    root.mainloop()


if __name__ == "__main__":
    main()
