"""Side-by-side speed runs: mmenc and a peer library, same model, inputs and batch size."""
