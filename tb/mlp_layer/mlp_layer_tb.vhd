-- mlp_layer_tb: mlp_layer and its weight ROM as one toplevel for the cocotb bench
-- tb/mlp_layer/test_mlp_layer.py.
--
-- Why a wrapper: GHDL's llvm back end cannot set top-level generics at run time, so the
-- sizes and the bias come from the package mlp_layer_tb_pkg, which the bench writes into
-- each parameter set's build folder next to the ROM (entity tb_layer_l0_rom, rendered
-- by gen/hdl/generate.py as layer 0 of a one-layer network). Every port is a flat
-- std_logic_vector because cocotb cannot read array-typed signals under GHDL. The bias
-- is a constant, as in the generated top level.
library ieee;
use ieee.std_logic_1164.all;
use work.mlp_layer_tb_pkg.all;

entity mlp_layer_tb is
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    in_valid  : in  std_logic;
    in_ready  : out std_logic;
    in_data   : in  std_logic_vector(P * A_BITS - 1 downto 0);
    acc_flat  : out std_logic_vector(N_OUT * ACC_BITS - 1 downto 0);
    acc_valid : out std_logic;
    out_valid : out std_logic;
    out_ready : in  std_logic;
    out_data  : out std_logic_vector(Q * ACC_BITS - 1 downto 0);
    out_last  : out std_logic
  );
end entity mlp_layer_tb;

architecture wrap of mlp_layer_tb is
  signal rom_addr : std_logic_vector(ADDR_BITS - 1 downto 0);
  signal rom_en   : std_logic;
  signal rom_data : std_logic_vector(PE * P * W_BITS - 1 downto 0);
begin
  u_rom : entity work.tb_layer_l0_rom
    port map (clk => clk, addr => rom_addr, en => rom_en, dout => rom_data);

  u_dut : entity work.mlp_layer
    generic map (
      N_IN => N_IN, N_OUT => N_OUT, W_BITS => W_BITS, A_BITS => A_BITS,
      ACC_BITS => ACC_BITS, P => P, PE => PE, Q => Q, ADDR_BITS => ADDR_BITS,
      MULT_STYLE => MULT_STYLE)
    port map (
      clk => clk, rst => rst,
      in_valid => in_valid, in_ready => in_ready, in_data => in_data,
      rom_addr => rom_addr, rom_en => rom_en, rom_data => rom_data, bias => BIAS,
      acc_flat => acc_flat, acc_valid => acc_valid,
      out_valid => out_valid, out_ready => out_ready, out_data => out_data,
      out_last => out_last);
end architecture wrap;
