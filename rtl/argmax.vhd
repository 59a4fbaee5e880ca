-- argmax: the network's decision from the last layer's accumulators, streamed in LANES
-- per clock, neuron 0 first (docs/numerics.md, section 6).
--   N_IN >= 2: the index of the largest value; on a tie the lowest index wins
--              (a later value replaces the best only when strictly greater).
--   N_IN  = 1: class 1 when the value is > 0 ("the digit is a 0"), else 0.
-- Lanes past N_IN in the last beat are ignored. Always ready; class_out is valid in the
-- clock where done is '1', LATENCY = 3 clocks after the last beat's in_valid: the beat is
-- registered on arrival (its source, the last layer's serializer, may sit across the
-- chip), compared with the best so far in the next clock, and the class is registered
-- from the best index in the clock after (the compare, its multiplexers and the class
-- register in one clock were the critical path of l10).
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity argmax is
  generic (
    N_IN       : positive := 10;  -- values per decision
    ACC_BITS   : positive := 24;  -- signed value width
    LANES      : positive := 1;   -- values per beat
    CLASS_BITS : positive := 4    -- width of class_out, 2**CLASS_BITS >= max(N_IN, 2)
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    in_valid  : in  std_logic;
    in_data   : in  std_logic_vector(LANES * ACC_BITS - 1 downto 0);
    in_last   : in  std_logic;
    done      : out std_logic := '0';  -- registers start at 0 (no X in a netlist)
    class_out : out std_logic_vector(CLASS_BITS - 1 downto 0) := (others => '0')
  );
end entity argmax;

architecture rtl of argmax is
  constant BEATS    : positive := (N_IN + LANES - 1) / LANES;
  signal   beat     : natural range 0 to BEATS := 0;  -- one spare value, as in mlp_layer
  signal   best     : signed(ACC_BITS - 1 downto 0) := (others => '0');
  signal   best_idx : natural range 0 to N_IN - 1 := 0;
  -- stage 1: the beat as it arrived, and the index of its lane 0 (the beat counter runs
  -- here, so that the compare stage only compares and selects)
  signal   r_base   : natural range 0 to BEATS * LANES := 0;
  signal   r_valid  : std_logic := '0';
  signal   r_last   : std_logic := '0';
  signal   r_data   : std_logic_vector(LANES * ACC_BITS - 1 downto 0) := (others => '0');
  -- stage 2 -> 3: the decision is complete in best/best_idx
  signal   fin      : std_logic := '0';
begin
  assert 2**CLASS_BITS >= N_IN and 2**CLASS_BITS >= 2
    report "argmax: CLASS_BITS too small for N_IN" severity failure;

  p_main : process (clk)
    variable v      : signed(ACC_BITS - 1 downto 0);
    variable b      : signed(ACC_BITS - 1 downto 0);
    variable b_idx  : natural range 0 to N_IN - 1;
    variable idx    : natural;
  begin
    if rising_edge(clk) then
      -- stage 3: the class from the completed decision
      done <= fin;
      if fin = '1' then
        if N_IN = 1 then
          class_out    <= (others => '0');
          class_out(0) <= '1' when best > 0 else '0';
        else
          class_out <= std_logic_vector(to_unsigned(best_idx, CLASS_BITS));
        end if;
      end if;
      -- stage 1: register the beat
      r_valid <= in_valid;
      r_last  <= in_last;
      if in_valid = '1' then
        r_data <= in_data;
        r_base <= beat * LANES;
        if in_last = '1' then
          beat <= 0;
        elsif beat < BEATS - 1 then
          beat <= beat + 1;
        end if;
      end if;
      -- stage 2: compare with the best so far
      fin <= '0';
      if r_valid = '1' then
        b     := best;
        b_idx := best_idx;
        for l in 0 to LANES - 1 loop
          idx := r_base + l;
          if idx < N_IN then
            v := signed(r_data((l + 1) * ACC_BITS - 1 downto l * ACC_BITS));
            if idx = 0 or v > b then
              b     := v;
              b_idx := idx;
            end if;
          end if;
        end loop;
        best     <= b;
        best_idx <= b_idx;
        fin      <= r_last;
      end if;
      if rst = '1' then
        beat    <= 0;
        done    <= '0';
        r_valid <= '0';
        fin     <= '0';
      end if;
    end if;
  end process p_main;
end architecture rtl;
