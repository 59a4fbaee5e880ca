-- Simulation model of the ECP5 multiplier block MULT18X18D, for the one configuration
-- that rtl/ecp5_mult.vhd uses: A and B signed, their input registers on CLK0 with CE0,
-- no pipeline register, the output register on CLK0 with CE1, synchronous RST0 on all
-- three, GSR off. Written from Lattice's sysDSP usage guide (TN1267); any other
-- configuration stops the simulation. It lets GHDL and NVC run the network with
-- MULT_STYLE "ecp5" (the code that the ECP5 synthesis flow maps); synthesis never reads it:
-- there the name is the device's block.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity MULT18X18D is
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
end entity MULT18X18D;

architecture model of MULT18X18D is
  signal av, bv : std_logic_vector(17 downto 0);
  signal ra, rb : signed(17 downto 0) := (others => '0');
  signal rp     : signed(35 downto 0) := (others => '0');
begin
  assert REG_INPUTA_CLK = "CLK0" and REG_INPUTA_CE = "CE0" and REG_INPUTA_RST = "RST0" and
         REG_INPUTB_CLK = "CLK0" and REG_INPUTB_CE = "CE0" and REG_INPUTB_RST = "RST0" and
         REG_PIPELINE_CLK = "NONE" and REG_OUTPUT_CLK = "CLK0" and REG_OUTPUT_CE = "CE1" and
         REG_OUTPUT_RST = "RST0" and GSR = "DISABLED" and RESETMODE = "SYNC"
    report "MULT18X18D model: only the configuration of rtl/ecp5_mult.vhd is modelled"
    severity failure;

  av <= A17 & A16 & A15 & A14 & A13 & A12 & A11 & A10 & A9 & A8 & A7 & A6 &
         A5 & A4 & A3 & A2 & A1 & A0;
  bv <= B17 & B16 & B15 & B14 & B13 & B12 & B11 & B10 & B9 & B8 & B7 & B6 &
         B5 & B4 & B3 & B2 & B1 & B0;

  p_regs : process (CLK0)
  begin
    if rising_edge(CLK0) then
      if RST0 = '1' then
        ra <= (others => '0');
        rb <= (others => '0');
        rp <= (others => '0');
      else
        if CE0 = '1' then
          ra <= signed(av);
          rb <= signed(bv);
        end if;
        if CE1 = '1' then
          rp <= ra * rb;
        end if;
      end if;
    end if;
  end process p_regs;

  (P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19,
   P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1,
   P0) <= std_logic_vector(rp);
end architecture model;
