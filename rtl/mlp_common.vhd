-- mlp_common: what the units of the layer datapath share, no entity: clog2, the choice
-- between integer and numeric_std arithmetic in the MAC, the multiplier styles and the
-- MAC latency. gen/hdl/mlp_common.py is the same in Python (the benches and the generator
-- take the latency and the styles from there); tests/test_mlp_common.py elaborates these
-- functions over a grid of generics and compares them with it.
--
-- Why not "mlp_pkg": generated packages are named <net>_pkg, and a network called "mlp"
-- would replace this package in the library.
library ieee;
use ieee.std_logic_1164.all;

package mlp_common is
  -- signed values of up to INT_BITS bits are VHDL integers in the MAC: several times
  -- faster to simulate in GHDL than numeric_std, the same widths after synthesis when
  -- their ranges are constrained
  constant INT_BITS : positive := 31;
  type int_arr is array (natural range <>) of integer;

  function clog2(n : positive) return natural;
  -- ceil(n / 2**l): the values left at level l of a tree of pairwise adders over n
  function halved(n : positive; l : natural) return positive;

  -- the MAC computes in integers (else numeric_std signed): its accumulators and its
  -- lane sums (W_BITS + A_BITS + 1 + ceil(log2 P) bits) fit INT_BITS
  function mac_int(w_bits, a_bits, acc_bits, p : positive) return boolean;

  -- The multiplier styles (mac_mult's MULT_STYLE):
  --   "inferred"  plain VHDL products, a register on each side (DSP blocks in synthesis)
  --   "ecp5"      the same registers inside ECP5 MULT18X18D blocks (rtl/ecp5_mult.vhd)
  --   "lut"       sums of gated, shifted weights, one register per level (no DSP block)
  -- "" when mac_mult supports the style for these widths, else why not (one line)
  function mult_error(style : string; w_bits, a_bits : positive; int_math : boolean)
    return string;
  -- mac_mult's stages, from the operand registers (stage 1) to the products
  function mult_stages(style : string; a_bits : positive) return positive;
  -- mac_array: clocks from x_valid to res_valid (a beat to its result)
  function mac_latency(style : string; p, a_bits : positive) return positive;
end package mlp_common;

package body mlp_common is
  function clog2(n : positive) return natural is
    variable r : natural := 0;
  begin
    while 2**r < n loop
      r := r + 1;
    end loop;
    return r;
  end function;

  function halved(n : positive; l : natural) return positive is
    variable r : positive := n;
  begin
    for i in 1 to l loop
      r := (r + 1) / 2;
    end loop;
    return r;
  end function;

  function mac_int(w_bits, a_bits, acc_bits, p : positive) return boolean is
  begin
    return acc_bits <= INT_BITS and w_bits + a_bits + 1 + clog2(p) <= INT_BITS;
  end function;

  function mult_error(style : string; w_bits, a_bits : positive; int_math : boolean)
    return string is
  begin
    if style = "inferred" then
      return "";
    elsif style = "ecp5" then
      if not int_math then
        return "MULT_STYLE ""ecp5"" needs the integer MAC (lane sums and accumulators of " &
               "at most 31 bits)";
      elsif w_bits > 18 or a_bits > 17 then
        return "MULT_STYLE ""ecp5"" needs W_BITS <= 18 and A_BITS <= 17 (one MULT18X18D), " &
               "got W_BITS=" & integer'image(w_bits) & " A_BITS=" & integer'image(a_bits);
      end if;
      return "";
    elsif style = "lut" then
      if not int_math then
        return "MULT_STYLE ""lut"" needs the integer MAC (lane sums and accumulators of " &
               "at most 31 bits)";
      elsif a_bits < 2 then
        return "MULT_STYLE ""lut"" needs A_BITS >= 2 (a 1-bit product is one gate)";
      end if;
      return "";
    end if;
    return "MULT_STYLE """ & style & """ is unknown: choose ""inferred"", ""ecp5"" or ""lut""";
  end function;

  function mult_stages(style : string; a_bits : positive) return positive is
  begin
    if style = "lut" then
      -- operands, then the ceil(log2 A_BITS) levels of the product's adder tree (at
      -- least one: A_BITS = 1 is refused by mult_error, and elaborates up to that assert)
      return 1 + maximum(clog2(a_bits), 1);
    end if;
    -- operands; operands again beside the multiplier block; products; products again
    return 4;
  end function;

  function mac_latency(style : string; p, a_bits : positive) return positive is
  begin
    -- stages -1 and 0 (the ROM word and the beat as they arrive), the multiplier, the
    -- adder tree's levels, the accumulators with the result register
    return 2 + mult_stages(style, a_bits) + clog2(p) + 1;
  end function;
end package body mlp_common;
