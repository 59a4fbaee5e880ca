"""cocotb benches and their pytest runners."""
