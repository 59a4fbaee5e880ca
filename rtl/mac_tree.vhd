-- mac_tree: mac_array's adder tree, the P products of each of PE neurons to one lane sum,
-- one registered level per halving (LEVELS = ceil(log2 P); an odd lane passes on).
--
-- Products of IN_BITS signed bits, neuron e's lane q at index e*P+q of prod_i (INT_MATH)
-- or at bits [(e*P+q+1)*IN_BITS-1 : (e*P+q)*IN_BITS] of prod_v (otherwise). The sums keep
-- TB = IN_BITS + LEVELS bits, so that no lane sum is ever truncated: neuron e's at
-- sum_i(e) or at bits [(e+1)*TB-1 : e*TB] of sum_v (the other port stays 0).
-- Level l loads from level l-1 (level 0: the products) when en(l) = '1'; clr loads 0
-- into the sums (the accumulators' addends: mac_ctrl's zero skip).
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;
use work.mlp_common.all;

entity mac_tree is
  generic (
    PE       : positive := 1;
    P        : positive := 2;   -- lanes per neuron, at least 2 (one lane needs no tree)
    IN_BITS  : positive := 17;  -- signed product width
    INT_MATH : boolean  := true -- integers (sums of up to 31 bits), else numeric_std
  );
  port (
    clk    : in  std_logic;
    en     : in  std_logic_vector(1 to clog2(P));
    clr    : in  std_logic;
    prod_i : in  int_arr(0 to PE * P - 1);
    prod_v : in  std_logic_vector(PE * P * IN_BITS - 1 downto 0);
    sum_i  : out int_arr(0 to PE - 1) := (others => 0);
    sum_v  : out std_logic_vector(PE * (IN_BITS + clog2(P)) - 1 downto 0) := (others => '0')
  );
end entity mac_tree;

architecture rtl of mac_tree is
  constant LEVELS : positive := clog2(P);
  constant TB     : positive := IN_BITS + LEVELS;  -- lane-sum width

  -- lanes per neuron at tree level l (level 0: the P products); a table, not a call of
  -- halved in the inner loops (2 % of a GHDL simulation at P = 8)
  type lanes_t is array (0 to LEVELS) of positive;
  function lanes_of return lanes_t is
    variable r : lanes_t;
  begin
    for l in r'range loop
      r(l) := halved(P, l);
    end loop;
    return r;
  end function;
  constant LANES : lanes_t := lanes_of;
begin
  assert P >= 2 report "mac_tree: P must be >= 2" severity failure;
  assert not INT_MATH or TB <= INT_BITS
    report "mac_tree: INT_MATH with lane sums wider than 31 bits" severity failure;

  g_int : if INT_MATH generate
    subtype t_t is integer range -(2**(TB - 1)) to 2**(TB - 1) - 1;
    type t_arr is array (0 to PE * P - 1) of t_t;   -- neuron e's lanes at e*P ..
    type tree_t is array (1 to LEVELS) of t_arr;     -- level l: ceil(P/2**l) lanes
  begin
    sum_v <= (others => '0');

    -- variables read before they are written (levels in reverse order): the same
    -- flip-flops as signals, without GHDL's signal updates; the top level is the port
    p_tree : process (clk)
      variable tree : tree_t := (others => (others => 0));
      variable t    : t_t;
    begin
      if rising_edge(clk) then
        for l in LEVELS downto 1 loop
          if en(l) = '1' then
            for e in 0 to PE - 1 loop
              for k in 0 to LANES(l) - 1 loop
                if l = 1 then
                  t := prod_i(e * P + 2 * k);
                  if 2 * k + 1 < LANES(l - 1) then
                    t := t + prod_i(e * P + 2 * k + 1);
                  end if;
                else
                  t := tree(l - 1)(e * P + 2 * k);
                  if 2 * k + 1 < LANES(l - 1) then
                    t := t + tree(l - 1)(e * P + 2 * k + 1);
                  end if;
                end if;
                if l = LEVELS then
                  sum_i(e) <= t;
                else
                  tree(l)(e * P + k) := t;
                end if;
              end loop;
            end loop;
          end if;
        end loop;
        if clr = '1' then
          sum_i <= (others => 0);
        end if;
      end if;
    end process p_tree;
  end generate g_int;

  g_wide : if not INT_MATH generate
    type t_arr is array (0 to PE * P - 1) of signed(TB - 1 downto 0);
    type tree_t is array (1 to LEVELS) of t_arr;
  begin
    sum_i <= (others => 0);

    p_tree : process (clk)
      variable tree : tree_t := (others => (others => (others => '0')));
      variable t    : signed(TB - 1 downto 0);
    begin
      if rising_edge(clk) then
        for l in LEVELS downto 1 loop
          if en(l) = '1' then
            for e in 0 to PE - 1 loop
              for k in 0 to LANES(l) - 1 loop
                if l = 1 then
                  t := resize(signed(prod_v((e * P + 2 * k + 1) * IN_BITS - 1 downto
                                            (e * P + 2 * k) * IN_BITS)), TB);
                  if 2 * k + 1 < LANES(l - 1) then
                    t := t + resize(signed(prod_v((e * P + 2 * k + 2) * IN_BITS - 1 downto
                                                  (e * P + 2 * k + 1) * IN_BITS)), TB);
                  end if;
                else
                  t := tree(l - 1)(e * P + 2 * k);
                  if 2 * k + 1 < LANES(l - 1) then
                    t := t + tree(l - 1)(e * P + 2 * k + 1);
                  end if;
                end if;
                if l = LEVELS then
                  sum_v((e + 1) * TB - 1 downto e * TB) <= std_logic_vector(t);
                else
                  tree(l)(e * P + k) := t;
                end if;
              end loop;
            end loop;
          end if;
        end loop;
        if clr = '1' then
          sum_v <= (others => '0');
        end if;
      end if;
    end process p_tree;
  end generate g_wide;
end architecture rtl;
