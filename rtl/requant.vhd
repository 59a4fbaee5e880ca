-- requant: ReLU, then requantization of LANES accumulators per clock to the next
-- layer's unsigned activation width (docs/numerics.md, section 5):
--   y = min((max(acc, 0) * MULT + 2**(SHIFT-1)) >> SHIFT, 2**OUT_BITS - 1)
-- One registered stage with a valid/ready handshake. Only LANES multipliers per layer:
-- the layer streams its accumulators through here, LANES at a time.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity requant is
  generic (
    ACC_BITS  : positive := 24;     -- signed input width
    LANES     : positive := 1;      -- values per beat
    OUT_BITS  : positive := 8;      -- unsigned output width
    MULT_BITS : positive := 16;     -- width of MULT
    MULT      : natural  := 32768;  -- multiplier, < 2**MULT_BITS
    SHIFT     : positive := 16;     -- rounding right shift, >= 1
    -- Test only (negative tests prove the benches catch it): truncate instead of round.
    FAULT_NO_ROUND : boolean := false
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    in_valid  : in  std_logic;
    in_ready  : out std_logic;
    in_data   : in  std_logic_vector(LANES * ACC_BITS - 1 downto 0);
    out_valid : out std_logic;
    out_ready : in  std_logic;
    out_data  : out std_logic_vector(LANES * OUT_BITS - 1 downto 0)
  );
end entity requant;

architecture rtl of requant is
  -- relu(acc) < 2**(ACC_BITS-1); the product and the rounding constant fit in PW bits.
  constant PW    : positive := ACC_BITS - 1 + MULT_BITS + 1;
  constant YMAX  : unsigned(PW - 1 downto 0) := to_unsigned(2**OUT_BITS - 1, PW);

  -- 2**(SHIFT-1): adding it before the right shift rounds half up.
  function rounding_constant return unsigned is
  begin
    if FAULT_NO_ROUND then
      return to_unsigned(0, PW);
    end if;
    return shift_left(to_unsigned(1, PW), SHIFT - 1);
  end function;

  constant HALF  : unsigned(PW - 1 downto 0) := rounding_constant;
  signal   out_v : std_logic := '0';
  signal   ready : std_logic;
begin
  assert ACC_BITS >= 2 report "requant: ACC_BITS must be >= 2" severity failure;
  assert MULT < 2**MULT_BITS report "requant: MULT does not fit MULT_BITS" severity failure;
  assert SHIFT < PW report "requant: SHIFT exceeds the product width" severity failure;
  assert OUT_BITS <= 30 report "requant: OUT_BITS must be <= 30" severity failure;

  ready     <= '1' when out_v = '0' or out_ready = '1' else '0';
  in_ready  <= ready;
  out_valid <= out_v;

  p_main : process (clk)
    variable r : unsigned(ACC_BITS - 2 downto 0);
    variable p : unsigned(PW - 1 downto 0);
  begin
    if rising_edge(clk) then
      if ready = '1' then
        out_v <= in_valid;
        if in_valid = '1' then
          for l in 0 to LANES - 1 loop
            if in_data((l + 1) * ACC_BITS - 1) = '1' then  -- ReLU
              r := (others => '0');
            else
              r := unsigned(in_data((l + 1) * ACC_BITS - 2 downto l * ACC_BITS));
            end if;
            p := resize(r * to_unsigned(MULT, MULT_BITS), PW) + HALF;
            p := shift_right(p, SHIFT);
            if p > YMAX then
              p := YMAX;
            end if;
            out_data((l + 1) * OUT_BITS - 1 downto l * OUT_BITS) <=
              std_logic_vector(p(OUT_BITS - 1 downto 0));
          end loop;
        end if;
      end if;
      if rst = '1' then
        out_v <= '0';
      end if;
    end if;
  end process p_main;
end architecture rtl;
