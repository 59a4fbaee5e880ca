-- ecp5_mult: one ECP5 multiplier block (MULT18X18D) with its input and output registers
-- on: p = a * b, two clocks after a and b (a signed, b unsigned).
--
--   edge 1  a, b into the block's input registers when ce_in = '1'
--   edge 2  their product into the block's output register when ce_out = '1'
--   rst     clears both (synchronous)
--
-- Why a vendor block: yosys' synth_ecp5 maps a product to a MULT18X18D with its
-- registers off and packs no flip-flop into it, so each product pays the block's
-- 3.9 ns of logic plus routing on both sides in one clock; nextpnr put the registers
-- around the blocks up to 40 columns away (mlp256 at PE = 64: 11.1 ns, 89.9 MHz).
-- With the block's own registers those paths are register to register.
-- mac_mult uses this unit for its stages 2 and 3 with MULT_STYLE "ecp5" (gen/eda/synth.py's
-- ECP5 flow); "inferred" has the same registers and product in plain VHDL. Simulation
-- needs a model of the block: tb/hdl/MULT18X18D.vhd (the configuration used here only).
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity ecp5_mult is
  generic (
    A_BITS : positive := 8;   -- signed, at most 18
    B_BITS : positive := 8;   -- unsigned, at most 17 (the block's B is signed 18)
    P_BITS : positive := 17   -- product bits kept, at most 36
  );
  port (
    clk    : in  std_logic;
    rst    : in  std_logic;
    ce_in  : in  std_logic;
    ce_out : in  std_logic;
    a      : in  std_logic_vector(A_BITS - 1 downto 0);
    b      : in  std_logic_vector(B_BITS - 1 downto 0);
    p      : out std_logic_vector(P_BITS - 1 downto 0)
  );
end entity ecp5_mult;

architecture rtl of ecp5_mult is
  component MULT18X18D is
    generic (
      REG_INPUTA_CLK : string := "NONE"; REG_INPUTA_CE : string := "CE0";
      REG_INPUTA_RST : string := "RST0";
      REG_INPUTB_CLK : string := "NONE"; REG_INPUTB_CE : string := "CE0";
      REG_INPUTB_RST : string := "RST0";
      REG_PIPELINE_CLK : string := "NONE";
      REG_OUTPUT_CLK : string := "NONE"; REG_OUTPUT_CE : string := "CE0";
      REG_OUTPUT_RST : string := "RST0";
      GSR : string := "ENABLED"; RESETMODE : string := "SYNC"
    );
    port (
      A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0 :
      in std_logic;
      B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0 :
      in std_logic;
      C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0 :
      in std_logic;
      SIGNEDA, SIGNEDB, SOURCEA, SOURCEB : in std_logic;
      CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0 : in std_logic;
      P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20,
      P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2,
      P1, P0 : out std_logic
    );
  end component MULT18X18D;

  signal a18 : std_logic_vector(17 downto 0);
  signal b18 : std_logic_vector(17 downto 0);
  signal p36 : std_logic_vector(35 downto 0);
begin
  assert A_BITS <= 18 and B_BITS <= 17 and P_BITS <= 36
    report "ecp5_mult: A_BITS must be <= 18, B_BITS <= 17 and P_BITS <= 36"
    severity failure;

  a18 <= std_logic_vector(resize(signed(a), 18));
  b18 <= std_logic_vector(resize(unsigned(b), 18));
  p   <= p36(P_BITS - 1 downto 0);

  u_mult : MULT18X18D
    generic map (
      REG_INPUTA_CLK => "CLK0", REG_INPUTA_CE => "CE0", REG_INPUTA_RST => "RST0",
      REG_INPUTB_CLK => "CLK0", REG_INPUTB_CE => "CE0", REG_INPUTB_RST => "RST0",
      REG_PIPELINE_CLK => "NONE",
      REG_OUTPUT_CLK => "CLK0", REG_OUTPUT_CE => "CE1", REG_OUTPUT_RST => "RST0",
      GSR => "DISABLED", RESETMODE => "SYNC")
    port map (
      A0 => a18(0), A1 => a18(1), A2 => a18(2), A3 => a18(3), A4 => a18(4), A5 => a18(5),
      A6 => a18(6), A7 => a18(7), A8 => a18(8), A9 => a18(9), A10 => a18(10), A11 => a18(11),
      A12 => a18(12), A13 => a18(13), A14 => a18(14), A15 => a18(15), A16 => a18(16), A17 => a18(17),
      B0 => b18(0), B1 => b18(1), B2 => b18(2), B3 => b18(3), B4 => b18(4), B5 => b18(5),
      B6 => b18(6), B7 => b18(7), B8 => b18(8), B9 => b18(9), B10 => b18(10), B11 => b18(11),
      B12 => b18(12), B13 => b18(13), B14 => b18(14), B15 => b18(15), B16 => b18(16), B17 => b18(17),
      C0 => '0', C1 => '0', C2 => '0', C3 => '0', C4 => '0', C5 => '0', C6 => '0', C7 => '0', C8 => '0',
      C9 => '0', C10 => '0', C11 => '0', C12 => '0', C13 => '0', C14 => '0', C15 => '0', C16 => '0', C17 => '0',
      SIGNEDA => '1', SIGNEDB => '1', SOURCEA => '0', SOURCEB => '0',
      CLK0 => clk, CLK1 => '0', CLK2 => '0', CLK3 => '0',
      CE0 => ce_in, CE1 => ce_out, CE2 => '0', CE3 => '0',
      RST0 => rst, RST1 => '0', RST2 => '0', RST3 => '0',
      P0 => p36(0), P1 => p36(1), P2 => p36(2), P3 => p36(3), P4 => p36(4), P5 => p36(5),
      P6 => p36(6), P7 => p36(7), P8 => p36(8), P9 => p36(9), P10 => p36(10), P11 => p36(11),
      P12 => p36(12), P13 => p36(13), P14 => p36(14), P15 => p36(15), P16 => p36(16), P17 => p36(17),
      P18 => p36(18), P19 => p36(19), P20 => p36(20), P21 => p36(21), P22 => p36(22), P23 => p36(23),
      P24 => p36(24), P25 => p36(25), P26 => p36(26), P27 => p36(27), P28 => p36(28), P29 => p36(29),
      P30 => p36(30), P31 => p36(31), P32 => p36(32), P33 => p36(33), P34 => p36(34), P35 => p36(35)
    );
end architecture rtl;
