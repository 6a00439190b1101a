"""The playbook engine: load playbooks, match incidents, plan tasks, run the lifecycle."""
