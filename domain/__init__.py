"""The registry office's own rules, free of BPMN and Flask."""
