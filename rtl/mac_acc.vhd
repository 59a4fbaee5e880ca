-- mac_acc: mac_array's PE accumulators and its result register.
--
-- When en = '1': acc(e) := (first ? bias(fold*PE + e) : acc(e)) + addend(e), the addend
-- of IN_BITS signed bits at add_i(e) (INT_MATH) or bits [(e+1)*IN_BITS-1 : e*IN_BITS] of
-- add_v (otherwise); with last the PE new values go to res_data (neuron e at bits
-- [(e+1)*ACC_BITS-1 : e*ACC_BITS]) with a one-clock res_valid and res_fold, and res_data
-- holds until the next fold completes. The accumulators are exactly ACC_BITS wide: every
-- partial sum b + (some products) fits them (docs/numerics.md, section 3), so the sums
-- stay exact, even where an addend is wider than ACC_BITS.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;
use work.mlp_common.all;

entity mac_acc is
  generic (
    PE        : positive := 1;
    ACC_BITS  : positive := 24;  -- signed accumulator width
    IN_BITS   : positive := 17;  -- signed addend width (lane sums)
    FOLDS     : positive := 1;   -- bias holds FOLDS*PE neurons' biases
    FOLD_BITS : positive := 1;
    INT_MATH  : boolean  := true -- integers (ACC_BITS and IN_BITS <= 31), else numeric_std
  );
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;
    en        : in  std_logic;
    first     : in  std_logic;
    last      : in  std_logic;
    fold      : in  std_logic_vector(FOLD_BITS - 1 downto 0);
    add_i     : in  int_arr(0 to PE - 1);
    add_v     : in  std_logic_vector(PE * IN_BITS - 1 downto 0);
    -- neuron n's bias at bits [(n+1)*ACC_BITS-1 : n*ACC_BITS] (a constant in practice)
    bias      : in  std_logic_vector(FOLDS * PE * ACC_BITS - 1 downto 0);
    res_valid : out std_logic := '0';  -- registers start at 0: no X in a netlist simulation
    res_fold  : out std_logic_vector(FOLD_BITS - 1 downto 0) := (others => '0');
    res_data  : out std_logic_vector(PE * ACC_BITS - 1 downto 0) := (others => '0')
  );
end entity mac_acc;

architecture rtl of mac_acc is
begin
  assert not INT_MATH or (ACC_BITS <= INT_BITS and IN_BITS <= INT_BITS)
    report "mac_acc: INT_MATH with values wider than 31 bits" severity failure;

  g_int : if INT_MATH generate
    subtype a_t is integer range -(2**(ACC_BITS - 1)) to 2**(ACC_BITS - 1) - 1;
    type a_arr is array (0 to PE - 1) of a_t;
    type b_arr is array (0 to FOLDS * PE - 1) of a_t;

    function to_bias(v : std_logic_vector) return b_arr is
      variable r : b_arr;
    begin
      for n in r'range loop
        r(n) := to_integer(signed(v((n + 1) * ACC_BITS - 1 downto n * ACC_BITS)));
      end loop;
      return r;
    end function;

    signal bias_i : b_arr;
  begin
    bias_i <= to_bias(bias);

    p_acc : process (clk)
      variable acc : a_arr := (others => 0);
      variable f   : natural range 0 to FOLDS - 1;
      variable a   : a_t;
      variable rd  : std_logic_vector(PE * ACC_BITS - 1 downto 0);
    begin
      if rising_edge(clk) then
        res_valid <= '0';
        if en = '1' then
          f := to_integer(unsigned(fold));
          for e in 0 to PE - 1 loop
            if first = '1' then
              a := bias_i(f * PE + e);
            else
              a := acc(e);
            end if;
            -- the addend is 0 for an all-zero beat (mac_ctrl's clr): no multiplexer
            -- after the adder, which was on the critical path
            a := a + add_i(e);
            acc(e) := a;
          end loop;
          if last = '1' then
            for e in 0 to PE - 1 loop
              rd((e + 1) * ACC_BITS - 1 downto e * ACC_BITS) :=
                std_logic_vector(to_signed(acc(e), ACC_BITS));
            end loop;
            res_data  <= rd;
            res_valid <= '1';
            res_fold  <= fold;
          end if;
        end if;
        if rst = '1' then
          res_valid <= '0';
        end if;
      end if;
    end process p_acc;
  end generate g_int;

  g_wide : if not INT_MATH generate
    type a_arr is array (0 to PE - 1) of signed(ACC_BITS - 1 downto 0);
    constant MAXW : positive := maximum(IN_BITS, ACC_BITS);

    -- the addend modulo 2**ACC_BITS: exact, as the accumulated result fits ACC_BITS
    function fit(v : signed) return signed is
      variable r : signed(MAXW - 1 downto 0);
    begin
      r := resize(v, MAXW);  -- sign extension only (never narrower)
      return r(ACC_BITS - 1 downto 0);
    end function;
  begin
    p_acc : process (clk)
      variable acc : a_arr := (others => (others => '0'));
      variable f   : natural range 0 to FOLDS - 1;
      variable a   : signed(ACC_BITS - 1 downto 0);
      variable rd  : std_logic_vector(PE * ACC_BITS - 1 downto 0);
      variable bi  : natural;
      variable bs  : std_logic_vector(ACC_BITS - 1 downto 0);
    begin
      if rising_edge(clk) then
        res_valid <= '0';
        if en = '1' then
          f := to_integer(unsigned(fold));
          for e in 0 to PE - 1 loop
            if first = '1' then
              bi := f * PE + e;
              -- slice, then convert: GHDL 4.1 --synth crashes on signed() of a variable slice
              bs := bias((bi + 1) * ACC_BITS - 1 downto bi * ACC_BITS);
              a  := signed(bs);
            else
              a := acc(e);
            end if;
            a := a + fit(signed(add_v((e + 1) * IN_BITS - 1 downto e * IN_BITS)));
            acc(e) := a;
            rd((e + 1) * ACC_BITS - 1 downto e * ACC_BITS) := std_logic_vector(a);
          end loop;
          if last = '1' then
            res_data  <= rd;
            res_valid <= '1';
            res_fold  <= fold;
          end if;
        end if;
        if rst = '1' then
          res_valid <= '0';
        end if;
      end if;
    end process p_acc;
  end generate g_wide;
end architecture rtl;
