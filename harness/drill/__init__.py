"""Running a drill: its config, its record (the journal), and the steps every drill shares."""
