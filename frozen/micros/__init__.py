# micrOS core. The frozen Load Modules are listed here because frozen code
# cannot be listed from a filesystem.
VERSION = "0.1.0"
LMS = ("system", "gpio", "sched")
