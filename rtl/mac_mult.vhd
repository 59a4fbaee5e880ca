-- mac_mult: the PE x P multipliers of mac_array, from the ROM word and the stage-0 beat
-- to registered products of exactly PB = W_BITS + A_BITS + 1 signed bits (never
-- truncated).
--
-- Weight of neuron e, lane q at field e*P+q of w_data (W_BITS wide, aligned with the
-- beat at mac_ctrl's stage -1); input lane q of x0 at field q (A_BITS wide, unsigned;
-- mac_ctrl's stage 0). Product i = e*P+q is prod_i(i) when INT_MATH, else bits
-- [(i+1)*PB-1 : i*PB] of prod_v (the other port stays 0).
--   stage -1, 0   the ROM word registered twice as it arrives, no enable
--   stage 1       the operands; a lane whose input is zero keeps its old weights (its
--                 product is 0)
--   stage 2 .. MS by MULT_STYLE (MS = mlp_common.mult_stages):
--     "inferred"  2: operands again, 3: products, 4: products again
--     "ecp5"      the same, with stages 2 and 3 inside MULT18X18D blocks (ecp5_mult)
--     "lut"       2 .. 1 + ceil(log2 A_BITS): a product is the sum of A_BITS gated,
--                 shifted copies of the weight, added as a tree with one register per
--                 level: adders only, no DSP block, for clocks that an ECP5 MULT18X18D
--                 without its (not inferred) registers cannot reach
-- Stage s+1 loads from stage s when en(s) = '1' (en(0): the operands from x0 and the ROM
-- word of stage 0). clr loads 0 into the products (they are the accumulators' addends
-- when P = 1: mac_ctrl's zero skip).
--
-- Why stages -1 and 0: a ROM word may come from block RAMs across the chip, through the
-- multiplexer of a deep ROM; two plain registers let the placer put one beside the block
-- RAMs and one on the way (with one, mlp256 at PE = 64 had 6.9 ns of routing after the
-- block RAM's 5.6 ns clock-to-output). Why stages 2 and 4: the multiplier blocks sit in
-- a few rows of the device, and with one register on each side the placer put those
-- registers between the block RAMs and the accumulators, leaving 3 ns of routing on each
-- side of the block (mlp256 at PE = 64: 11.4 ns). A second register whose only neighbour
-- is the block can sit beside it.
--
-- A new style: a branch of g_int (or g_wide) below, and its stage count and its
-- supported widths in mlp_common (mult_stages, mult_error) and gen/hdl/mlp_common.py.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;
use work.mlp_common.all;

entity mac_mult is
  generic (
    PE         : positive := 1;
    P          : positive := 1;
    W_BITS     : positive := 8;   -- signed weight width
    A_BITS     : positive := 8;   -- unsigned input width
    MULT_STYLE : string   := "inferred";
    -- integers (products of up to 31 bits) or numeric_std signed: mac_array's mac_int
    INT_MATH   : boolean  := true
  );
  port (
    clk    : in  std_logic;
    rst    : in  std_logic;
    w_data : in  std_logic_vector(PE * P * W_BITS - 1 downto 0);
    x0     : in  std_logic_vector(P * A_BITS - 1 downto 0);
    en     : in  std_logic_vector(0 to mult_stages(MULT_STYLE, A_BITS) - 1);
    clr    : in  std_logic;
    prod_i : out int_arr(0 to PE * P - 1) := (others => 0);
    prod_v : out std_logic_vector(PE * P * (W_BITS + A_BITS + 1) - 1 downto 0) :=
      (others => '0')
  );
end entity mac_mult;

architecture rtl of mac_mult is
  constant PB : positive := W_BITS + A_BITS + 1;  -- product width
  -- an unsupported style builds nothing: the assert below is the one message
  constant OK : boolean  := mult_error(MULT_STYLE, W_BITS, A_BITS, INT_MATH) = "";
begin
  assert mult_error(MULT_STYLE, W_BITS, A_BITS, INT_MATH) = ""
    report "mac_mult: " & mult_error(MULT_STYLE, W_BITS, A_BITS, INT_MATH) severity failure;
  assert W_BITS >= 2 and W_BITS <= 30 and A_BITS <= 30
    report "mac_mult: W_BITS must be 2..30 and A_BITS 1..30" severity failure;
  assert not INT_MATH or PB <= INT_BITS
    report "mac_mult: INT_MATH with products wider than 31 bits" severity failure;

  g_int : if INT_MATH generate
    subtype x_t is natural range 0 to 2**A_BITS - 1;
    subtype w_t is integer range -(2**(W_BITS - 1)) to 2**(W_BITS - 1) - 1;
    subtype p_t is integer range -(2**(PB - 1)) to 2**(PB - 1) - 1;
    -- one input register per multiplier, not per lane: a lane's input feeds PE
    -- multipliers spread over the chip, and a shared register put long routing in
    -- front of every DSP block (mlp256, PE = 64: 4.3 ns of a 12.4 ns critical path).
    -- The copies are equal; the synthesis flow marks them keep so they are not merged.
    type x_arr is array (0 to PE * P - 1) of x_t;
    type w_arr is array (0 to PE * P - 1) of w_t;
    type p_arr is array (0 to PE * P - 1) of p_t;

    -- a weight field as an integer: to_integer(signed(v)) with numeric_std's checks and
    -- temporaries was the largest cost of a GHDL simulation (17 % of its samples, 256
    -- calls per non-zero beat of mlp256); the same value from a loop over the bits.
    -- A metavalue is reported as a warning, which fails a bench run like numeric_std's.
    function to_w(v : std_logic_vector) return w_t is
      variable r : integer := 0;
    begin
      for i in v'range loop  -- v'left is the sign bit
        r := r * 2;
        if v(i) = '1' then
          r := r + 1;
        elsif v(i) /= '0' then
          report "mac_mult: metavalue in a weight" severity warning;
          return 0;
        end if;
      end loop;
      if v(v'left) = '1' then
        r := r - 2**W_BITS;
      end if;
      return r;
    end function;

    -- stage 1: every multiplier's input, and the weights of the lanes with a non-zero
    -- input (the others keep theirs: their product is 0 anyway)
    procedure load_operands(x : std_logic_vector; w : std_logic_vector;
                            xr : inout x_arr; wr : inout w_arr) is
      variable xq : x_t;
    begin
      for q in 0 to P - 1 loop
        xq := to_integer(unsigned(x((q + 1) * A_BITS - 1 downto q * A_BITS)));
        for e in 0 to PE - 1 loop
          xr(e * P + q) := xq;
          if xq /= 0 then
            wr(e * P + q) := to_w(w((e * P + q + 1) * W_BITS - 1 downto (e * P + q) * W_BITS));
          end if;
        end loop;
      end loop;
    end procedure;
  begin
    prod_v <= (others => '0');

    -- Why variables: the pipeline registers are variables read before they are written
    -- (stages in reverse order), which synthesizes to the same flip-flops as signals but
    -- spares GHDL PE*P signal updates per stage and clock: about 2x faster here. The
    -- products are the port itself (the next unit reads them).
    g_inferred : if MULT_STYLE = "inferred" generate
      p_mult : process (clk)
        variable wa  : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
        variable w0  : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
        variable xr  : x_arr := (others => 0);  -- stage 1
        variable wr  : w_arr := (others => 0);
        variable xr2 : x_arr := (others => 0);  -- stage 2
        variable wr2 : w_arr := (others => 0);
        variable pr  : p_arr := (others => 0);  -- stage 3
      begin
        if rising_edge(clk) then
          if en(3) = '1' then  -- stage 4: the products registered again
            for i in pr'range loop
              prod_i(i) <= pr(i);
            end loop;
          end if;
          if en(2) = '1' then  -- stage 3: the multiplier blocks, a register on each side
            for i in pr'range loop
              pr(i) := wr2(i) * xr2(i);
            end loop;
          end if;
          if en(1) = '1' then  -- stage 2: the operands registered again
            xr2 := xr;
            wr2 := wr;
          end if;
          if clr = '1' then
            prod_i <= (others => 0);
          end if;
          if en(0) = '1' then
            load_operands(x0, w0, xr, wr);
          end if;
          w0 := wa;
          wa := w_data;
          if rst = '1' then
            -- Operands to 0: initial values of process variables do not survive GHDL's
            -- synthesis, so without this the netlist (and the device after power-up)
            -- would start from unknown weights that a zero input multiplies into its
            -- product.
            xr  := (others => 0);
            wr  := (others => 0);
            xr2 := (others => 0);
            wr2 := (others => 0);
          end if;
        end if;
      end process p_mult;
    end generate g_inferred;

    g_ecp5 : if OK and MULT_STYLE = "ecp5" generate
      -- the stage-1 operands into the blocks, their products out
      signal dsp_w : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
      signal dsp_x : std_logic_vector(PE * P * A_BITS - 1 downto 0) := (others => '0');
      signal dsp_p : std_logic_vector(PE * P * PB - 1 downto 0);
    begin
      -- stages 2 and 3: the blocks' input registers (enabled by en(1)) and output
      -- registers (en(2))
      g_mult : for i in 0 to PE * P - 1 generate
        u_mult : entity work.ecp5_mult
          generic map (A_BITS => W_BITS, B_BITS => A_BITS, P_BITS => PB)
          port map (
            clk => clk, rst => rst, ce_in => en(1), ce_out => en(2),
            a => dsp_w((i + 1) * W_BITS - 1 downto i * W_BITS),
            b => dsp_x((i + 1) * A_BITS - 1 downto i * A_BITS),
            p => dsp_p((i + 1) * PB - 1 downto i * PB));
      end generate g_mult;

      p_mult : process (clk)
        variable wa : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
        variable w0 : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
        variable xr : x_arr := (others => 0);  -- stage 1
        variable wr : w_arr := (others => 0);
      begin
        if rising_edge(clk) then
          if en(3) = '1' then  -- stage 4: the blocks' registered products
            for i in 0 to PE * P - 1 loop
              prod_i(i) <= to_integer(signed(dsp_p((i + 1) * PB - 1 downto i * PB)));
            end loop;
          end if;
          if clr = '1' then
            prod_i <= (others => 0);
          end if;
          if en(0) = '1' then
            load_operands(x0, w0, xr, wr);
            for i in 0 to PE * P - 1 loop  -- the same stage-1 registers, as the blocks' inputs
              dsp_w((i + 1) * W_BITS - 1 downto i * W_BITS) <=
                std_logic_vector(to_signed(wr(i), W_BITS));
              dsp_x((i + 1) * A_BITS - 1 downto i * A_BITS) <=
                std_logic_vector(to_unsigned(xr(i), A_BITS));
            end loop;
          end if;
          w0 := wa;
          wa := w_data;
          if rst = '1' then  -- operands to 0, as in g_inferred
            xr := (others => 0);
            wr := (others => 0);
            dsp_w <= (others => '0');
            dsp_x <= (others => '0');
          end if;
        end if;
      end process p_mult;
    end generate g_ecp5;

    g_lut : if OK and MULT_STYLE = "lut" generate
      constant PL : positive := clog2(A_BITS);  -- levels of a product's tree
      type pp_arr is array (0 to PE * P * A_BITS - 1) of p_t;  -- product i's sums at i*A_BITS
      type ptree_t is array (1 to maximum(PL - 1, 1)) of pp_arr;  -- levels 1 .. PL-1

      -- level l of a product's tree holds ceil(A_BITS/2**l) partial sums (a table: no
      -- call in the inner loops)
      type widths_t is array (0 to PL) of positive;
      function widths_of return widths_t is
        variable r : widths_t;
      begin
        for l in r'range loop
          r(l) := halved(A_BITS, l);
        end loop;
        return r;
      end function;
      constant PWIDTH : widths_t := widths_of;
      -- gated, shifted weight: bit b of x selects w * 2**b (adders only, no multiplier)
      function term(w : w_t; x : x_t; b : natural) return p_t is
      begin
        if b < A_BITS and to_unsigned(x, A_BITS)(b) = '1' then
          return w * 2**b;
        end if;
        return 0;
      end function;
    begin
      p_mult : process (clk)
        variable wa : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
        variable w0 : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
        variable xr : x_arr := (others => 0);  -- stage 1
        variable wr : w_arr := (others => 0);
        variable pt : ptree_t := (others => (others => 0));  -- stages 2 .. PL
        variable u  : p_t;
      begin
        if rising_edge(clk) then
          -- the product tree, top level first; level l (stage 1+l) from level l-1
          -- (stage l; level 0: the gated weights of the operands)
          for l in PL downto 1 loop
            if en(l) = '1' then
              for i in 0 to PE * P - 1 loop
                for k in 0 to PWIDTH(l) - 1 loop
                  if l = 1 then
                    u := term(wr(i), xr(i), 2 * k) + term(wr(i), xr(i), 2 * k + 1);
                  elsif 2 * k + 1 < PWIDTH(l - 1) then
                    u := pt(l - 1)(i * A_BITS + 2 * k) + pt(l - 1)(i * A_BITS + 2 * k + 1);
                  else
                    u := pt(l - 1)(i * A_BITS + 2 * k);
                  end if;
                  if l = PL then
                    prod_i(i) <= u;
                  else
                    pt(l)(i * A_BITS + k) := u;
                  end if;
                end loop;
              end loop;
            end if;
          end loop;
          if clr = '1' then
            prod_i <= (others => 0);
          end if;
          if en(0) = '1' then
            load_operands(x0, w0, xr, wr);
          end if;
          w0 := wa;
          wa := w_data;
          if rst = '1' then  -- operands to 0, as in g_inferred
            xr := (others => 0);
            wr := (others => 0);
          end if;
        end if;
      end process p_mult;
    end generate g_lut;
  end generate g_int;

  -- wider than integers (int16): numeric_std signed, MULT_STYLE "inferred" only
  g_wide : if not INT_MATH generate
    type x_arr is array (0 to PE * P - 1) of signed(A_BITS downto 0);  -- per multiplier
    type w_arr is array (0 to PE * P - 1) of signed(W_BITS - 1 downto 0);
    type p_arr is array (0 to PE * P - 1) of signed(PB - 1 downto 0);
  begin
    prod_i <= (others => 0);

    g_inferred : if MULT_STYLE = "inferred" generate
      p_mult : process (clk)
        variable wa  : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
        variable w0  : std_logic_vector(PE * P * W_BITS - 1 downto 0) := (others => '0');
        variable xr  : x_arr := (others => (others => '0'));  -- stage 1
        variable wr  : w_arr := (others => (others => '0'));
        variable xr2 : x_arr := (others => (others => '0'));  -- stage 2
        variable wr2 : w_arr := (others => (others => '0'));
        variable pr  : p_arr := (others => (others => '0'));  -- stage 3
        variable xq  : signed(A_BITS downto 0);
      begin
        if rising_edge(clk) then
          if en(3) = '1' then  -- stage 4, as in g_int
            for n in pr'range loop
              prod_v((n + 1) * PB - 1 downto n * PB) <= std_logic_vector(pr(n));
            end loop;
          end if;
          if en(2) = '1' then
            for n in pr'range loop
              -- W_BITS x (A_BITS+1) bits: the full product, PB bits, never truncated
              pr(n) := wr2(n) * xr2(n);
            end loop;
          end if;
          if en(1) = '1' then
            xr2 := xr;
            wr2 := wr;
          end if;
          if clr = '1' then
            prod_v <= (others => '0');
          end if;
          if en(0) = '1' then
            for q in 0 to P - 1 loop
              xq := signed('0' & x0((q + 1) * A_BITS - 1 downto q * A_BITS));
              for e in 0 to PE - 1 loop
                xr(e * P + q) := xq;
                if xq /= 0 then
                  wr(e * P + q) :=
                    signed(w0((e * P + q + 1) * W_BITS - 1 downto (e * P + q) * W_BITS));
                end if;
              end loop;
            end loop;
          end if;
          w0 := wa;
          wa := w_data;
          if rst = '1' then  -- operands to 0, as in g_int
            xr  := (others => (others => '0'));
            wr  := (others => (others => '0'));
            xr2 := (others => (others => '0'));
            wr2 := (others => (others => '0'));
          end if;
        end if;
      end process p_mult;
    end generate g_inferred;
  end generate g_wide;
end architecture rtl;
