"""What a merchandiser owns: catalog, inventory, experiments, merchandising rules, the admin."""
