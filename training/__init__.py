"""SiaSamRea training code: Trainer, collator, entry points, configs and the command line."""
